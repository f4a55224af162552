"""Loads infra/demo-data.json into the consumers and restaurants tables.

Local stack (what `make run` does):   python -m infra.load_demo_data --endpoint-url http://127.0.0.1:4566
Deployed stack (your AWS credentials): python -m infra.load_demo_data --stack-name order-taking

With --stack-name the table names are read from the stack's outputs; each table can also be
named with --table LOGICAL_ID=NAME. Items are put (overwritten), so loading twice is harmless."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import boto3

DATA = Path(__file__).with_name("demo-data.json")
OUTPUTS = {"ConsumersTable": "ConsumersTableName", "RestaurantsTable": "RestaurantsTableName"}


def load(dynamodb, tables: dict[str, str], data: dict[str, list[dict]]) -> int:
    """Puts every item of `data` (keyed by logical table id) into the named tables."""
    count = 0
    for logical_id, items in data.items():
        table = dynamodb.Table(tables[logical_id])
        with table.batch_writer() as batch:
            for item in items:
                batch.put_item(Item=item)
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint-url", help="the local stack's AWS endpoint")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--stack-name", help="read the table names from this CloudFormation stack")
    parser.add_argument("--table", action="append", default=[], metavar="LOGICAL_ID=NAME")
    args = parser.parse_args()
    session = boto3.session.Session(region_name=args.region)
    local = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"} if args.endpoint_url else {}
    tables = dict(zip(OUTPUTS, OUTPUTS))  # the local stack names tables by logical id
    if args.stack_name:
        outputs = session.client("cloudformation").describe_stacks(StackName=args.stack_name)["Stacks"][0]["Outputs"]
        by_key = {o["OutputKey"]: o["OutputValue"] for o in outputs}
        tables = {logical: by_key[output] for logical, output in OUTPUTS.items()}
    tables.update(dict(pair.split("=", 1) for pair in args.table))
    dynamodb = session.resource("dynamodb", endpoint_url=args.endpoint_url, **local)
    count = load(dynamodb, tables, json.loads(DATA.read_text()))
    print(f"loaded {count} demo items into {', '.join(tables.values())}")


if __name__ == "__main__":
    main()
