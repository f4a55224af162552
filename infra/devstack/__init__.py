"""devstack: the project's SAM template running on one machine, without Docker or an AWS account."""
