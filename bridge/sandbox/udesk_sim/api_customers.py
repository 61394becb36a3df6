"""/open_api_v1/customers...: create, get, update, delete (customers-api.txt)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bridge.udesk.errors import CODE_OK

from . import shapes
from .params import CODE_BAD_PARAMS, Answer, body, params, to_int
from .shapes import udesk, udesk_error
from .state import Customer

if TYPE_CHECKING:
    from .simulator import UdeskSimulator

CODE_NOT_FOUND = 2005
CODE_BAD_TYPE = 2060
UNKNOWN = "Unknown error"
WEB_TOKEN_RE = re.compile(r"^[A-Za-z0-9@._-]+$")
LEVELS = ("normal", "vip")
# Attributes a create/update body may set verbatim.
PLAIN_FIELDS = (
    "nick_name",
    "email",
    "description",
    "organization_id",
    "owner_id",
    "owner_group_id",
    "level",
    "is_blocked",
    "web_token",
    "sdk_token",
)


class CustomersApi:
    def __init__(self, sim: UdeskSimulator) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/customers", self.list_customers),
            web.post("/customers", self.create),
            web.get("/customers/get_customer", self.get),
            web.put("/customers/update_customer", self.update),
            web.delete("/customers/destroy_customer", self.destroy),
        ]

    async def list_customers(self, request: web.Request) -> web.Response:
        p = params(request)
        page_size = min(max(to_int(p.get("page_size")) or 20, 1), 100)
        page = max(to_int(p.get("page")) or 1, 1)
        rows = list(self.sim.customers.values())
        chunk = rows[(page - 1) * page_size : page * page_size]
        meta = {
            "current_page": page,
            "total_pages": max((len(rows) + page_size - 1) // page_size, 1),
            "total_count": len(rows),
        }
        return udesk(CODE_OK, meta=meta, wechat=[], weibo=[], customers=[c.wire() for c in chunk])

    async def create(self, request: web.Request) -> web.Response:
        payload = body(request)
        data = payload.get("customer") if isinstance(payload, dict) else None
        if not isinstance(data, dict) or not data:
            return _missing_customer()
        if not data.get("nick_name"):
            return udesk_error(2000, UNKNOWN, "Verification failed: nick_name can't be blank")
        customer = Customer(
            id=self.sim.next_id("customer"),
            open_api_token=None,
            fields=shapes.new_customer_fields(""),
        )
        self._apply(customer, data, payload)
        self.sim.customers[customer.id] = customer
        return udesk(CODE_OK, customer=customer.wire())

    async def get(self, request: web.Request) -> web.Response:
        return udesk(CODE_OK, customer=self._find(request).wire())

    async def update(self, request: web.Request) -> web.Response:
        customer = self._find(request)
        payload = body(request)
        data = payload.get("customer") if isinstance(payload, dict) else None
        if not isinstance(data, dict) or not data:
            return _missing_customer()
        self._apply(customer, data, payload)
        return udesk(CODE_OK, customer=customer.wire())

    async def destroy(self, request: web.Request) -> web.Response:
        customer = self._find(request)
        self.sim.im.forget_customer(customer)
        return udesk(CODE_OK, customer_id=customer.id)

    # --- helpers --------------------------------------------------------------------------

    def _find(self, request: web.Request) -> Customer:
        p = params(request)
        kind, content = p.get("type"), p.get("content")
        if not kind:
            raise Answer(udesk_error(CODE_BAD_TYPE, "Invalid unique identifier type"))
        content = "" if content is None else str(content)
        matchers: dict[str, Callable[[Customer], bool]] = {
            "id": lambda c: str(c.id) == content,
            "token": lambda c: c.open_api_token == content,
            "email": lambda c: (
                content in [c.fields["email"], *(e[1] for e in c.fields["other_emails"])]
            ),
            "cellphone": lambda c: content in [ph["content"] for ph in c.fields["cellphones"]],
            "web_token": lambda c: c.fields["web_token"] == content,
            "sdk_token": lambda c: c.fields["sdk_token"] == content,
        }
        match = matchers.get(str(kind))
        if match is None:
            raise Answer(udesk_error(CODE_BAD_TYPE, "Invalid unique identifier type"))
        found = next((c for c in self.sim.customers.values() if match(c)), None)
        if found is None or not content:
            raise Answer(
                udesk_error(CODE_NOT_FOUND, "The resource was not found", "Couldn't find Customer")
            )
        return found

    def _others(self, customer: Customer) -> list[Customer]:
        return [c for c in self.sim.customers.values() if c.id != customer.id]

    def _apply(self, customer: Customer, data: dict[str, Any], payload: dict[str, Any]) -> None:
        """Validate everything first, then write: a refused update changes nothing."""
        others = self._others(customer)
        token = data.get("open_api_token")
        if token and any(c.open_api_token == token for c in others):
            # Not in the vendor's table; worded like its "web_token duplicate: XXX".
            raise Answer(udesk_error(2000, UNKNOWN, f"open_api_token duplicate: {token}"))
        email = data.get("email")
        owner = next((c for c in others if email and c.fields["email"] == email), None)
        if owner is not None:
            raise Answer(udesk_error(2000, UNKNOWN, f"Email duplicate: customer id = {owner.id}"))
        web_token = data.get("web_token")
        if web_token is not None:
            if not isinstance(web_token, str):
                raise Answer(udesk_error(2000, UNKNOWN, "web_token must be a string"))
            if not WEB_TOKEN_RE.match(web_token):
                raise Answer(udesk_error(2000, UNKNOWN, f"web_token format error: {web_token}"))
            if any(c.fields["web_token"] == web_token for c in others):
                raise Answer(udesk_error(2000, UNKNOWN, f"web_token duplicate: {web_token}"))
        if "level" in data and data["level"] not in LEVELS:
            raise Answer(udesk_error(2000, UNKNOWN, f"'{data['level']}' is not a valid level"))
        phones = data.get("cellphones") or []
        if not isinstance(phones, list) or not all(
            isinstance(x, list | tuple) and len(x) == 2 for x in phones
        ):
            raise Answer(udesk_error(CODE_BAD_PARAMS, "Incorrect parameter format", "cellphones"))
        used = {p["content"] for c in others for p in c.fields["cellphones"]}
        for _, number in phones:
            if number in used:
                raise Answer(
                    udesk_error(2000, UNKNOWN, f"Verification failed: Phone {number} has been used")
                )
        custom = data.get("custom_fields")
        if custom is not None and not isinstance(custom, dict):
            raise Answer(udesk_error(2000, UNKNOWN, "undefined method `each' for custom_fields"))

        if token is not None:
            customer.open_api_token = str(token) or None
        for name in PLAIN_FIELDS:
            if name in data:
                customer.fields[name] = data[name]
        if custom:
            customer.fields["custom_fields"].update(custom)
        self._merge_phones(customer, phones)
        if isinstance(payload.get("other_emails"), list):
            customer.fields["other_emails"] = [
                [pid if pid is not None else self.sim.next_id("email"), addr]
                for pid, addr in payload["other_emails"]
            ]
        if isinstance(payload.get("tags"), str):
            names = [t.strip() for t in payload["tags"].split(",") if t.strip()]
            customer.fields["tags"] = [
                {"id": self.sim.tag_id(n), "name": n, "company_id": 1} for n in names
            ]

    def _merge_phones(self, customer: Customer, phones: list[Any]) -> None:
        # [null, "131..."] adds a phone; [id, "131..."] replaces that phone's number.
        current: list[dict[str, Any]] = customer.fields["cellphones"]
        for phone_id, number in phones:
            existing = next((p for p in current if p["id"] == phone_id), None)
            if existing is not None:
                existing["content"] = str(number)
            elif all(p["content"] != str(number) for p in current):
                current.append({"id": self.sim.next_id("phone"), "content": str(number)})


def _missing_customer() -> web.Response:
    return udesk_error(2000, UNKNOWN, "param is missing or the value is empty: customer")
