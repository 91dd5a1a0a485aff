"""The numbers a shaped answer keeps beside its records unless the route lists its own.

An upstream's envelope is the upstream's to fill, and a number is data as much as a
string is (``"first_id_number": 450102198305120031``, ``"contact": 13800138000``). What
real list APIs put beside their records is pagination, under a handful of names:

    Django REST framework   count (next, previous: URLs, strings)
    Spring Data ``Page``    totalElements, totalPages, size, number, numberOfElements,
                            first, last, empty
    MyBatis-Plus ``IPage``  total, size, current, pages; PageHelper's ``PageInfo``
                            pageNum, pageSize, startRow, endRow, prePage, nextPage,
                            isFirstPage, isLastPage, hasPreviousPage, hasNextPage
    Rails (kaminari, ...)   total_count, total_pages, current_page, per_page,
                            next_page, prev_page, limit_value, offset_value
    Stripe, Slack, others   has_more, limit, offset, next, prev, skip, top
    若依 ``TableDataInfo``    total (and ``code``, the wrapper's outcome: STATUS_NAMES)
    jQuery DataTables       draw (the request's counter, echoed), recordsTotal,
                            recordsFiltered

So without an ``envelope:`` list the envelope keeps a key only when its name is one of
these (:data:`NAMES`, compared as item names are: ``totalCount`` is ``total_count``)
and its value is a count: ``null``, a boolean, or a whole number from 0 to
:data:`MAX_COUNT` (a Java ``int``: a mobile number, 11 digits, or an ID number, 18, is
no count). A route whose answers carry more lists them in ``envelope:``, and then only
those stay (``catalogue.envelope``). The same counts pass as header fields of a shaped
answer (``X-Total-Count``, GitLab's ``X-Next-Page``, Yii's ``X-Pagination-*``, rate
limits): :func:`count_header`.
"""

from __future__ import annotations

from typing import Any

from catalogue.item_names import item_key

MAX_COUNT = 2**31 - 1
NAMES = frozenset(item_key(n) for n in (
    "total", "count", "total_count", "total_elements", "total_items", "total_pages",
    "total_records", "total_results", "total_size", "page", "pages", "page_count",
    "page_num", "page_number", "page_no", "page_index", "page_size", "per_page", "size",
    "limit", "limit_value", "offset", "offset_value", "skip", "top", "start", "current",
    "current_page", "number", "number_of_elements", "start_row", "end_row", "next",
    "prev", "previous", "next_page", "prev_page", "previous_page", "pre_page",
    "has_more", "has_next", "has_next_page", "has_prev", "has_previous",
    "has_previous_page", "is_first_page", "is_last_page", "first", "last", "empty",
    "draw", "records_total", "records_filtered",
))
# a wrapper's own outcome beside the records, as a number or a boolean: 若依's
# ``AjaxResult``/``TableDataInfo`` ``{"code": 200, "msg": ..., "rows": [...], "total": n}``,
# WeChat-style ``errcode``, ``{"success": true}``; without it a consumer that checks
# ``code == 200`` reads every shaped answer as a failure. Counts only, as above (an
# ID number or a mobile number is no status); their text (``msg``) needs ``envelope:``.
STATUS_NAMES = frozenset(item_key(n) for n in (
    "code", "status", "status_code", "success", "ok", "errcode", "errno", "error_code",
    "ret", "result_code",
))
# header fields besides the pagination names (above, after ``X-`` or ``X-Pagination-``):
# rate limits (the IETF draft's RateLimit-*, the X-RateLimit-* before it) and Retry-After
# in seconds
_HEADER_NAMES = NAMES | frozenset(item_key(n) for n in (
    "ratelimit_limit", "ratelimit_remaining", "ratelimit_reset", "retry_after"))
_HEADER_PREFIXES = ("x-pagination-", "x-")
_DIGITS = frozenset(b"0123456789")


def is_count(value: Any) -> bool:
    """Whether ``value`` (parsed JSON) is a count: null, a boolean, a whole number from
    0 to :data:`MAX_COUNT`."""
    return value is None or isinstance(value, bool) or (
        isinstance(value, int) and 0 <= value <= MAX_COUNT)


def is_pagination(key: str) -> bool:
    """Whether an envelope key is named as pagination, or a wrapper's outcome, is
    (module docstring, :data:`STATUS_NAMES`)."""
    key = item_key(key)
    return key in NAMES or key in STATUS_NAMES


def count_header(name: str, value: bytes) -> bool:
    """Whether the header field ``name`` (lower case) with ``value`` is a count a shaped
    answer carries: a pagination or rate-limit name, one to ten digits, at most
    :data:`MAX_COUNT`."""
    digits = value.strip()
    if not 0 < len(digits) <= 10 or not _DIGITS.issuperset(digits) \
            or int(digits) > MAX_COUNT:
        return False
    if item_key(name) in _HEADER_NAMES:
        return True
    return any(name.startswith(p) and item_key(name[len(p):]) in _HEADER_NAMES
               for p in _HEADER_PREFIXES)
