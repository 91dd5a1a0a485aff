# ruff: noqa: E501
"""The language of the demo systems' pages, and their words in Chinese and English.

The portal opens a system with the language its user chose in the link
(``?lang=en``: the launcher adds it to the proxied page and to a CAS service URL a
registered pattern still matches, when its page is in English; README, "The demo"). That is what a real
relying party reads from a portal's deep link, and it carries it through its own
sign-in as real clients carry their state: in the OpenID Connect state cookie (and
``ui_locales`` to the identity provider, OpenID Connect Core 3.1.2.1), in the CAS
service URL. Anything else is Chinese, the agencies' working language, as the portal.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse

LANGS = ("zh", "en")

# a small icon of its own (the demo imports nothing of the gateway's), so that a
# browser's request for /favicon.ico is no 404 in the console
ICON = (b"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'>"
        b"<rect width='32' height='32' rx='6' fill='#2f5d8a'/>"
        b"<rect x='8' y='9' width='16' height='14' rx='2' fill='#fff'/></svg>")

WORDS: dict[str, tuple[str, str]] = {
    "vehicles": ("公务用车管理平台", "Official Vehicles"),
    "offices": ("办公用房管理系统", "Office Space"),
    "assets": ("资产管理系统", "Assets"),
    "direct": ("（未经网关）", "(not through the gateway)"),
    "through": ("经 govgate 访问", "through govgate"),
    "sso_link": ("通过统一身份认证登录", "Sign in through govgate single sign-on"),
    "cas_link": ("通过 CAS 统一身份认证登录", "Sign in through govgate by CAS"),
    "other_lang": ("English", "中文"),
    "sso_expired": ("登录失败：请求已过期或不完整。", "Sign-in failed: the request expired or is incomplete."),
    "sign_in_again": ("重新登录", "Sign in again"),
    "sso_code_refused": ("登录失败：网关拒绝了授权码（{status}）。",
                         "Sign-in failed: the gateway refused the authorization code ({status})."),
    "sso_no_userinfo": ("登录失败：无法读取用户信息（{status}）。",
                        "Sign-in failed: the user's details could not be read ({status})."),
    "sso_signed_in": ("已通过统一身份认证登录：{who}", "Signed in through govgate single sign-on: {who}"),
    "cas_refused": ("登录失败：网关未确认该票据。", "Sign-in failed: the gateway did not confirm the ticket."),
    "cas_signed_in": ("已通过 CAS 统一身份认证登录：{who}", "Signed in through govgate by CAS: {who}"),
    "not_found": ("未找到该记录", "No such record"),
    "yes": ("是", "Yes"),
    "records_link": ("查看本系统的数据", "See this system's records"),
    "portal_link": ("返回统一身份认证门户", "Back to the govgate portal"),
    "no": ("否", "No"),
}

# the records' fields as the table's header names them (the records stay as the
# department keeps them: its data, in Chinese)
FIELDS: dict[str, tuple[str, str]] = {
    "plate_number": ("车牌号", "Plate number"), "brand": ("品牌型号", "Make and model"),
    "vehicle_type": ("车辆类型", "Type"), "department": ("所属单位", "Department"),
    "status": ("状态", "Status"), "mileage_km": ("行驶里程（公里）", "Mileage (km)"),
    "driver_name": ("驾驶员", "Driver"), "driver_id_number": ("驾驶员身份证号", "Driver's ID number"),
    "driver_phone": ("驾驶员手机号", "Driver's phone"), "purchase_year": ("购置年份", "Bought in"),
    "fuel": ("能源类型", "Fuel"), "room_id": ("房间编号", "Room"), "building": ("楼栋", "Building"),
    "floor": ("楼层", "Floor"), "area_m2": ("使用面积（㎡）", "Area (m²)"), "usage": ("用途", "Use"),
    "occupant_department": ("使用单位", "Occupying department"),
    "occupant_name": ("使用人", "Occupant"), "standard_m2": ("标准面积（㎡）", "Standard area (m²)"),
    "over_standard": ("是否超标", "Over the standard"), "asset_code": ("资产编号", "Asset code"),
    "name": ("资产名称", "Name"), "category": ("资产类别", "Category"),
    "original_value": ("原值（元）", "Original value (yuan)"),
    "net_value": ("净值（元）", "Net value (yuan)"), "acquired": ("取得日期", "Acquired"),
    "custodian": ("保管人", "Custodian"), "location": ("存放地点", "Location"),
}


def lang_of(request: Request) -> str:
    """``?lang=`` when it names one of ours, else Chinese."""
    wanted = request.query_params.get("lang", "")
    return wanted if wanted in LANGS else "zh"


def say(key: str, lang: str, **values: object) -> str:
    zh, en = WORDS[key]
    return (en if lang == "en" else zh).format(**values)


def field(key: str, lang: str) -> str:
    zh, en = FIELDS.get(key, (key, key))
    return en if lang == "en" else zh


def cell(value: object, lang: str) -> str:
    """A record's value as the table shows it: a yes-or-no in the page's words (Python
    wrote ``False`` on the Chinese page and the English one alike)."""
    if isinstance(value, bool):
        return say("yes" if value else "no", lang)
    return "" if value is None else str(value)


def onward(gateway: str, lang: str) -> str:
    """The ways on from a system's signed-in page (HTML): its own records, and the
    portal it came from (the page was a dead end)."""
    suffix = "?lang=en" if lang == "en" else ""
    return (f"</p><p><a href='/{suffix}' id='records'>{say('records_link', lang)}</a>"
            f" · <a href='{html.escape(gateway)}/portal{suffix}' id='portal'>"
            f"{say('portal_link', lang)}</a>")


def person(lang: str, name: str, *details: str) -> str:
    """A person as the page's language writes one: 赵敏（zhao.min，czt）, 赵敏 (zhao.min, czt)."""
    if lang == "en":
        return f"{name} ({', '.join(details)})"
    return f"{name}（{'，'.join(details)}）"


def html_lang(lang: str) -> str:
    return "en" if lang == "en" else "zh-CN"


def page(code: str, lang: str, body: str, status: int = 200) -> HTMLResponse:
    """A sign-in answer of system ``code``: its name, then ``body`` (HTML)."""
    title = html.escape(say(code, lang))
    return HTMLResponse(f"<!doctype html><html lang='{html_lang(lang)}'><meta charset='utf-8'>"
                        f"<title>{title}</title><h1>{title}</h1><p>{body}</p></html>",
                        status_code=status)
