"""`AWS::SecretsManager::Secret`: a generated value, as `GenerateSecretString` makes one."""

from __future__ import annotations

import secrets
import string
from typing import TYPE_CHECKING

from ..template import Resource, TemplateError
from . import check_properties

if TYPE_CHECKING:
    from ..stack import Stack


SECRET_PROPERTIES = {"Name", "Description", "GenerateSecretString", "Tags"}


def create(stack: Stack, resource: Resource) -> None:
    """A secret with a generated value, as `GenerateSecretString` makes one; `Ref` is its ARN."""
    check_properties(resource, SECRET_PROPERTIES)
    props = stack.template.resolve(resource.properties, resource.logical_id)
    generate = props.get("GenerateSecretString")
    unknown = set(generate or {}) - {"PasswordLength", "ExcludePunctuation"}
    if not generate or unknown:
        raise TemplateError(f"{resource.logical_id}: devstack makes secrets with GenerateSecretString "
                            f"(PasswordLength, ExcludePunctuation) only")
    alphabet = string.ascii_letters + string.digits + ("" if generate.get("ExcludePunctuation") else string.punctuation)
    value = "".join(secrets.choice(alphabet) for _ in range(int(generate.get("PasswordLength", 32))))
    arn = stack.client("secretsmanager").create_secret(Name=props.get("Name", resource.logical_id),
                                                      SecretString=value)["ARN"]
    stack.template.physical[resource.logical_id] = arn
