"""Loads infra/demo-data.json through the consumer and restaurant contexts' own APIs
(`PUT /consumers/{id}`, `PUT /restaurants/{id}`, with an operator's token), so that the order
context's replicas are built by their events, as in production.

Local stack: `make run` does it (devstack up --demo-data).
Deployed stack: python -m infra.load_demo_data --stack-name order-taking --token "$OPERATOR"

PUT is idempotent: loading twice changes nothing the second time (no new version, no event)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import boto3
import requests

DATA = Path(__file__).with_name("demo-data.json")
PATHS = {"consumers": "/consumers/{}", "restaurants": "/restaurants/{}"}


def via_api(api: str, token: str, data: dict) -> dict[str, int]:
    """PUTs every consumer and restaurant; answers each replica key with its stored version."""
    versions = {}
    with requests.Session() as session:
        session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        for kind, entities in data.items():
            for entity_id, body in entities.items():
                url = api + PATHS[kind].format(entity_id)
                # PUT is idempotent: a failure of ours (5xx) is simply sent again.
                for attempt in range(6):
                    answer = session.put(url, data=json.dumps(body), timeout=30)
                    if answer.status_code < 500:
                        break
                    time.sleep(0.2 * 2 ** attempt)
                if answer.status_code not in (200, 201):
                    raise RuntimeError(f"PUT {kind}/{entity_id}: {answer.status_code} {answer.text}")
                versions[replica_key(kind, entity_id)] = answer.json()["version"]
    return versions


def replica_key(kind: str, entity_id: str) -> str:
    return f"{'CONSUMER' if kind == 'consumers' else 'RESTAURANT'}#{entity_id}"


def wait_for_replicas(dynamodb, table: str, versions: dict[str, int], timeout: float = 60) -> float:
    """Waits until the order context's replica holds each version; answers the seconds taken."""
    started = time.time()
    waiting = dict(versions)
    while waiting:
        for key, version in list(waiting.items()):
            item = dynamodb.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item")
            if item and int(item["version"]["N"]) >= version:
                del waiting[key]
        if waiting and time.time() - started > timeout:
            raise RuntimeError(f"replicas not updated within {timeout} s: {sorted(waiting)}")
        time.sleep(0.1)
    return time.time() - started


def into_tables(dynamodb, tables: dict[str, str], data: dict) -> None:
    """For a run without event delivery (`devstack invoke`): the owners' items at version 1 and
    the replica as replica-updater would have written it."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    meta = {"eventId": "00000000-0000-7000-8000-000000000000", "occurredAt": now, "schemaVersion": 1}
    for kind, entities in data.items():
        key = "consumerId" if kind == "consumers" else "restaurantId"
        owner = dynamodb.Table(tables["ConsumersTable" if kind == "consumers" else "RestaurantsTable"])
        replica = dynamodb.Table(tables["ReplicasTable"])
        for entity_id, body in entities.items():
            owner.put_item(Item=decimals({key: entity_id, "version": 1, **body}))
            entity = {"kind": "Consumer" if kind == "consumers" else "Restaurant", **meta,
                      key: entity_id, "version": 1, **body}
            replica.put_item(Item=decimals({"pk": replica_key(kind, entity_id), "version": 1,
                                             "entity": entity}))


def decimals(value):
    """boto3's resource layer takes numbers as Decimal only."""
    from decimal import Decimal
    if isinstance(value, dict):
        return {k: decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decimals(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", help="the API's base URL (default: the stack's ApiUrl output)")
    parser.add_argument("--stack-name", help="read the API's URL from this CloudFormation stack")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--token", required=True, help="an operator's token (scope orders/operator)")
    args = parser.parse_args()
    api = args.api
    if not api:
        if not args.stack_name:
            parser.error("name the API with --api or --stack-name")
        cloudformation = boto3.session.Session(region_name=args.region).client("cloudformation")
        outputs = cloudformation.describe_stacks(StackName=args.stack_name)["Stacks"][0]["Outputs"]
        api = {o["OutputKey"]: o["OutputValue"] for o in outputs}["ApiUrl"]
    versions = via_api(api.rstrip("/"), args.token, json.loads(DATA.read_text()))
    print(f"loaded {len(versions)} consumers and restaurants through {api}")


if __name__ == "__main__":
    main()
