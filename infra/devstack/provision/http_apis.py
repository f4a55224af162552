"""`AWS::Serverless::HttpApi`: its `$default` stage, CORS, and JWT authorizers of devstack's own
issuer; each route's authorizer and scopes (`route_auth`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..template import Resource, TemplateError
from ..http_api import Cors
from ..identity import JwtAuthorizer
from . import check_properties

if TYPE_CHECKING:
    from ..stack import Stack


HTTP_API_PROPERTIES = {"Description", "FailOnWarnings", "Tags", "StageName", "Auth",
                       "CorsConfiguration",
                       # deploy-only: access logs and throttling
                       "AccessLogSettings", "DefaultRouteSettings"}


def create(stack: Stack, api: Resource) -> None:
    check_properties(api, HTTP_API_PROPERTIES)
    stage = api.properties.get("StageName", "$default")
    if stage != "$default":
        raise TemplateError(f"{api.logical_id}: only the $default stage is emulated")
    stack.template.physical[api.logical_id] = api.logical_id
    create_authorizers(stack, api)
    cors = stack.template.resolve(api.properties.get("CorsConfiguration"), api.logical_id)
    if cors:
        try:
            stack.cors = Cors.of(cors)
        except ValueError as e:
            raise TemplateError(f"{api.logical_id}: {e}") from None


def create_authorizers(stack: Stack, api: Resource) -> None:
    """The API's JWT authorizers, verifying tokens of devstack's own issuer: without an
    AWS account or internet there is no other provider's key set to fetch."""
    where = f"{api.logical_id}.Auth"
    auth = stack.template.resolve(api.properties.get("Auth", {}), where)
    unknown = set(auth) - {"DefaultAuthorizer", "Authorizers", "EnableIamAuthorizer"}
    if unknown or auth.get("EnableIamAuthorizer"):
        raise TemplateError(f"{where}: devstack emulates JWT authorizers only")
    authorizers = {}
    for name, spec in auth.get("Authorizers", {}).items():
        config = spec.get("JwtConfiguration")
        if config is None or set(spec) - {"JwtConfiguration", "IdentitySource"}:
            raise TemplateError(f"{where}.Authorizers.{name}: only JWT authorizers are emulated")
        if stack.issuer is None or config.get("issuer") != stack.issuer.url:
            raise TemplateError(
                f"{where}.Authorizers.{name}: issuer {config.get('issuer')!r} is not devstack's "
                f"({stack.issuer.url if stack.issuer else 'none'}); leave JwtIssuer unset locally")
        audience = config.get("audience") or []
        try:
            authorizers[name] = JwtAuthorizer(
                stack.issuer.url, audience if isinstance(audience, list) else [audience],
                stack.issuer.jwks(), spec.get("IdentitySource", "$request.header.Authorization"))
        except ValueError as e:
            raise TemplateError(f"{where}.Authorizers.{name}: {e}") from None
    default = auth.get("DefaultAuthorizer")
    if default is not None and default not in authorizers:
        raise TemplateError(f"{where}: DefaultAuthorizer {default} is not among its Authorizers")
    stack.authorizers[api.logical_id] = (default, authorizers)


def route_auth(stack: Stack, where: str, api_id: Any, auth: dict[str, Any]) -> tuple[JwtAuthorizer | None, list[str]]:
    """A route's authorizer and scopes: its own Auth, else the API's default authorizer."""
    api = api_id.get("Ref") if isinstance(api_id, dict) else None
    if api not in stack.authorizers:
        raise TemplateError(f"{where}: ApiId must Ref an AWS::Serverless::HttpApi of the template")
    default, authorizers = stack.authorizers[api]
    unknown = set(auth) - {"Authorizer", "AuthorizationScopes"}
    if unknown:
        raise TemplateError(f"{where}.Auth: devstack does not support {', '.join(sorted(unknown))}")
    name = auth.get("Authorizer", default)
    if name in (None, "NONE"):
        return None, []
    if name not in authorizers:
        raise TemplateError(f"{where}.Auth: no authorizer {name}")
    return authorizers[name], list(auth.get("AuthorizationScopes", []))
