"""What the tests of devstack's moto fixes share: an in-process moto server and its clients."""

from __future__ import annotations

import boto3
import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer


@pytest.fixture(scope="module")
def endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def aws(endpoint):
    """A client of the test server for a service: `aws("sqs")`."""
    def client(service: str):
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    return client


@pytest.fixture
def new_table(aws):
    """Makes a table keyed by the string `pk` on the test server: `new_table("t")`; each is
    deleted after the test."""
    dynamodb = aws("dynamodb")
    made = []

    def make(name: str):
        dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        made.append(name)
        return dynamodb

    yield make
    for name in made:
        dynamodb.delete_table(TableName=name)
