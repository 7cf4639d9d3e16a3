"""Filters, tests and globals: Nunjucks' behaviour where it differs from Jinja,
Backstage's own filters, and size checks on the filters that can multiply their
input (so that one expression cannot ask for gigabytes)."""

from __future__ import annotations

import decimal
import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from jinja2 import Undefined, pass_context, pass_environment
from jinja2 import filters as jinja_filters
from jinja2.environment import Environment
from jinja2.filters import do_float, do_indent, do_int
from jinja2.runtime import Context
from markupsafe import Markup
from markupsafe import escape as html_escape

from falsework.errors import TemplateRenderError, TemplateSecurityError
from falsework.templating.jsvalue import Budget, js_scalar, js_str, js_text, json_text, to_plain
from falsework.templating.regex import JsRegExp, nunjucks_regex

MAX_ITEMS = 100_000
"""The longest list or range a template may build (Jinja's sandbox uses the same)."""


def max_output(environment: Environment) -> int:
    return int(getattr(environment, "max_output", 10_000_000))


def check_size(environment: Environment, size: int, what: str) -> None:
    limit = max_output(environment)
    if size > limit:
        raise TemplateSecurityError(
            f"{what} would produce {size:,} characters, over the limit of {limit:,}"
        )


def bounded_list(value: Any, what: str) -> list[Any]:
    """``list(value)``, refused past :data:`MAX_ITEMS` items before they are built
    (a 10 MB string would be ten million one-character strings)."""
    if isinstance(value, str | list | tuple | Mapping) and len(value) > MAX_ITEMS:
        raise TemplateSecurityError(f"{what} would build a list over {MAX_ITEMS:,} items")
    items = list(itertools.islice(iter(value), MAX_ITEMS + 1))
    if len(items) > MAX_ITEMS:
        raise TemplateSecurityError(f"{what} would build a list over {MAX_ITEMS:,} items")
    return items


def split(text: str, method: str, sep: Any = None, maxsplit: Any = -1) -> list[str]:
    """``str.split`` / ``rsplit`` with at most :data:`MAX_ITEMS` parts."""
    wanted = int(maxsplit)
    parts: list[str] = getattr(text, method)(
        None if sep is None else js_str(sep), MAX_ITEMS if wanted < 0 else min(wanted, MAX_ITEMS)
    )
    if len(parts) > MAX_ITEMS:
        raise TemplateSecurityError(f"{method} would build a list over {MAX_ITEMS:,} items")
    return parts


_LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def splitlines(text: str, keepends: bool = False) -> list[str]:
    if sum(text.count(c) for c in _LINE_BREAKS) >= MAX_ITEMS:
        raise TemplateSecurityError(f"splitlines would build a list over {MAX_ITEMS:,} items")
    return text.splitlines(keepends)


# -- JavaScript-style conversions ------------------------------------------
#
# A list may hold the same 10 MB string 100,000 times (it costs only
# references); printing or dumping it would ask for a terabyte in one C call
# that no time limit can interrupt. So every conversion of a container to text
# walks it in Python first, counting, and stops at the output limit.


@pass_environment
def dump(environment: Environment, value: Any, indent: int | str | None = None) -> Any:
    """JSON.stringify: compact by default, ``dump(2)`` indents; undefined stays
    undefined (prints nothing; a lone ``${{ x | dump }}`` leaves its key out)."""
    if isinstance(value, Undefined):
        return value
    return json_text(value, indent, Budget(max_output(environment), "dump"))


@pass_environment
def tojson(environment: Environment, value: Any, indent: int | None = None) -> str:
    """Jinja's tojson (JSON safe inside HTML) with the size check of dump."""
    text = json_text(value, indent, Budget(max_output(environment), "tojson"))
    grows = sum(text.count(char) for char in "<>&'")
    check_size(environment, len(text) + 5 * grows, "tojson")
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(char, escaped)
    return text


@pass_environment
def finalize(environment: Environment, value: Any) -> str:
    """How an expression prints in text."""
    if isinstance(value, str):
        return value
    return js_str(value, max_output(environment))


@pass_environment
def sum_(environment: Environment, value: Any, attribute: str | None = None, start: Any = 0) -> Any:
    """Jinja's sum, one checked '+' at a time (summing lists in one C call could
    build billions of items before any limit could stop it)."""
    total = start
    add = getattr(environment, "add", None)
    for item in value:
        if attribute is not None:
            item = environment.getitem(item, attribute)
        total = add(total, item) if add is not None else total + item
    return total


@pass_environment
def join(
    environment: Environment, value: Any, separator: str = "", attribute: str | None = None
) -> str:
    """Nunjucks' join: nothing between the items by default (JavaScript's
    ``list.join()`` member passes its ``,``)."""
    if isinstance(value, Undefined) or value is None:
        return ""
    items = bounded_list(value.keys() if isinstance(value, Mapping) else value, "join")
    if attribute is not None:
        items = [environment.getitem(item, attribute) for item in items]
    sep = js_str(separator)
    # one budget for every part: a list may hold the same big list many times
    budget = Budget(max_output(environment), "join")
    budget.spend(len(sep) * max(len(items) - 1, 0))
    parts = [js_text(item, budget) for item in items]
    return sep.join(parts)


@pass_environment
def replace(
    environment: Environment, value: Any, old: Any, new: Any, count: int | None = None
) -> str:
    if isinstance(old, JsRegExp):  # `replace(r/…/g, "x")`, JavaScript's semantics
        return old.sub(js_str(value), js_str(new), max_output(environment))
    text, old_s, new_s = js_str(value), js_str(old), js_str(new)
    hits = len(text) + 1 if old_s == "" else text.count(old_s)
    if count is not None and count >= 0:
        hits = min(hits, int(count))
    check_size(environment, len(text) + hits * (len(new_s) - len(old_s)), "replace")
    return text.replace(old_s, new_s, -1 if count is None else int(count))


@pass_environment
def indent(
    environment: Environment,
    value: Any,
    width: int | str = 2,
    first: bool = False,
    blank: bool = False,
) -> str:
    """Nunjucks' indent: two spaces by default and the first line left alone."""
    text = js_str(value)
    pad = len(width) if isinstance(width, str) else int(width)
    check_size(environment, len(text) + (text.count("\n") + 1) * max(pad, 0), "indent")
    return str(do_indent(text, width, first, blank))


@pass_environment
def center(environment: Environment, value: Any, width: int = 80) -> str:
    check_size(environment, int(width), "center")
    return js_str(value).center(int(width))


def reverse(value: Any) -> Any:
    """A list, not an iterator (a lone ``${{ x | reverse }}`` must keep a value)."""
    if isinstance(value, str):
        return value[::-1]
    if isinstance(value, Undefined) or value is None:
        return value
    return bounded_list(value, "reverse")[::-1]


_URL_SAFE = "-_.!~*'()"
_URL_CHUNK = 65_536


@pass_environment
def urlencode(environment: Environment, value: Any) -> str:
    """encodeURIComponent for strings; ``k=v&...`` for objects and pairs. Encoded
    a slice at a time, each counted (one character may become twelve)."""
    limit = max_output(environment)
    budget = Budget(limit, "urlencode")
    if isinstance(value, Mapping):
        pairs: Iterable[Any] = value.items()
    elif isinstance(value, list | tuple) and all(
        isinstance(p, list | tuple) and len(p) == 2 for p in value
    ):
        pairs = value
    else:
        return _quote(js_str(value, limit), budget)
    parts = []
    for key, item in pairs:
        parts.append(f"{_quote(js_str(key, limit), budget)}={_quote(js_str(item, limit), budget)}")
        budget.spend(2)
    return "&".join(parts)


def _quote(text: str, budget: Budget) -> str:
    pieces = []
    for start in range(0, len(text), _URL_CHUNK):
        piece = quote(text[start : start + _URL_CHUNK], safe=_URL_SAFE)
        budget.spend(len(piece))
        pieces.append(piece)
    return "".join(pieces)


@pass_environment
def truncate(
    environment: Environment,
    value: Any,
    length: int = 255,
    killwords: bool = False,
    end: str = "...",
) -> str:
    """Nunjucks' truncate: cut at the last space before ``length`` (or at
    ``length`` with killwords), then add ``end``; ``end`` does not count."""
    limit = max_output(environment)
    text = js_str(value, limit)
    length = int(length)
    if len(text) <= length:
        return text
    if killwords:
        cut = length
    else:
        cut = text.rfind(" ", 0, length + 1)
        if cut == -1:
            cut = length
    tail = js_str(end, limit)
    check_size(environment, max(cut, 0) + len(tail), "truncate")
    return text[:cut] + tail


def to_int(value: Any, default: int = 0, base: int = 10) -> int:
    """parseInt: undefined, null and non-numbers give the default."""
    if value is None or isinstance(value, Undefined):
        return default
    return int(do_int(value, default, base))


def to_float(value: Any, default: float = 0.0) -> float:
    if value is None or isinstance(value, Undefined):
        return default
    return float(do_float(value, default))


def title(value: Any) -> str:
    """Nunjucks' title: each space-separated word capitalised ("hello-world" stays
    one word: "Hello-world"; Jinja would give "Hello-World")."""
    return " ".join(word[:1].upper() + word[1:].lower() for word in js_str(value).split(" "))


@pass_environment
def groupby(environment: Environment, value: Any, attribute: str) -> dict[str, list[Any]]:
    """Nunjucks' groupby: an object of lists keyed by the attribute's value
    (``{% for key, items in list | groupby('type') %}`` works as in Nunjucks)."""
    groups: dict[str, list[Any]] = {}
    for item in bounded_list(value, "groupby"):
        current = item
        for part in str(attribute).split("."):
            current = environment.getitem(current, part)
        groups.setdefault(js_str(current), []).append(item)
    return groups


@pass_environment
def string(environment: Environment, value: Any) -> str:
    return js_str(value, max_output(environment))


@pass_environment
def nl2br(environment: Environment, value: Any) -> str:
    text = js_str(value, max_output(environment))
    crlf = text.count("\r\n")
    check_size(environment, len(text) + 5 * crlf + 6 * (text.count("\n") - crlf), "nl2br")
    return text.replace("\r\n", "<br />\n").replace("\n", "<br />\n")


_HTML_GROWTH = {"&": 4, "<": 3, ">": 3, '"': 4, "'": 4}  # &amp; &lt; &gt; &#34; &#39;


@pass_environment
def escape(environment: Environment, value: Any) -> Markup:
    """HTML escaping (``escape``, ``e``, ``forceescape``), its growth counted first."""
    if isinstance(value, Markup):
        return value
    text = js_str(value, max_output(environment))
    grows = sum(text.count(char) * extra for char, extra in _HTML_GROWTH.items())
    check_size(environment, len(text) + grows, "escape")
    return html_escape(text)


@pass_environment
def forceescape(environment: Environment, value: Any) -> Markup:
    return escape(environment, str(value) if isinstance(value, Markup) else value)


def _as_text(name: str) -> Callable[..., Any]:
    """Jinja's string filter ``name``, given a value printed as Nunjucks does
    within the output limit (Jinja would call ``str()``, whose Python repr of a
    list holding one big string many times cannot be stopped)."""
    original = jinja_filters.FILTERS[name]

    @pass_environment
    def on_text(environment: Environment, value: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            value = js_str(value, max_output(environment))
        return original(value, *args, **kwargs)

    on_text.__doc__ = original.__doc__
    return on_text


@pass_environment
def urlize(environment: Environment, value: Any, *args: Any, **kwargs: Any) -> str:
    """Jinja's urlize; each link at most doubles its word and adds its attributes,
    counted before it runs."""
    from jinja2.nodes import EvalContext

    text = js_str(value, max_output(environment))
    extra = sum(len(js_str(v)) for v in (*args, *kwargs.values()) if isinstance(v, str))
    words = sum(text.count(c) for c in " \t\n\r\f\v") + 1
    check_size(environment, 2 * len(text) + words * (64 + extra), "urlize")
    result: str = jinja_filters.do_urlize(EvalContext(environment), text, *args, **kwargs)
    return result


@pass_environment
def to_list(environment: Environment, value: Any) -> list[Any]:
    del environment
    return bounded_list(value, "list")


@pass_environment
def sort(environment: Environment, value: Any, *args: Any, **kwargs: Any) -> list[Any]:
    result: list[Any] = jinja_filters.do_sort(
        environment, bounded_list(value, "sort"), *args, **kwargs
    )
    return result


@pass_environment
def batch(
    environment: Environment, value: Any, size: int, fill_with: Any = None
) -> list[list[Any]]:
    items = bounded_list(value, "batch")
    size = int(size)
    if size < 1:
        raise TemplateRenderError("batch: the size must be at least 1")
    if fill_with is not None and size > MAX_ITEMS:
        raise TemplateSecurityError(f"batch: a size over {MAX_ITEMS:,} is not allowed")
    out = [items[i : i + size] for i in range(0, len(items), size)]
    if fill_with is not None and out and len(out[-1]) < size:
        out[-1].extend([fill_with] * (size - len(out[-1])))
    return out


def slice_(value: Any, slices: int, fill_with: Any = None) -> list[list[Any]]:
    slices = int(slices)
    if slices < 1:
        raise TemplateRenderError("slice: the number of slices must be at least 1")
    if slices > MAX_ITEMS:
        raise TemplateSecurityError(f"slice: more than {MAX_ITEMS:,} slices is not allowed")
    items = bounded_list(value, "slice")
    per, extra = divmod(len(items), slices)
    out: list[list[Any]] = []
    offset = 0
    for index in range(slices):
        length = per + (1 if index < extra else 0)
        part = items[offset : offset + length]
        offset += length
        if fill_with is not None and extra and index >= extra:
            part.append(fill_with)
        out.append(part)
    return out


@pass_environment
def concat(environment: Environment, parts: Any) -> str:
    """Jinja's ``~`` with a size check (the AST pass routes ``~`` here)."""
    limit = max_output(environment)
    texts = [js_str(p, limit) for p in parts]
    check_size(environment, sum(map(len, texts)), "'~'")
    return "".join(texts)


def items_pairs(value: Any) -> Any:
    """``{% for k, v in obj %}`` iterates an object's pairs in Nunjucks."""
    if isinstance(value, Mapping):
        return list(value.items())
    return value


# -- Backstage's filters ---------------------------------------------------


def parse_repo_url(value: Any) -> dict[str, str]:
    """``github.com?owner=o&repo=r`` → ``{host, owner, repo, ...}``.

    Backstage checks the host against its SCM integrations; Falsework has none,
    so the host's name decides which query parameters are required.
    """
    url = js_str(value)
    try:
        parts = urlsplit(f"https://{url}")
        host = parts.netloc
    except ValueError:
        host = ""
    if not url or not host:
        raise TemplateRenderError(f"Invalid repo URL passed to publisher, got {url!r}")
    query = parse_qs(parts.query)
    result: dict[str, str] = {"host": host}
    for key in ("owner", "organization", "workspace", "project", "repo"):
        if query.get(key):
            result[key] = query[key][0]
    if "bitbucket" in host:
        if host == "bitbucket.org" and "workspace" not in result:
            raise TemplateRenderError(
                f"Invalid repo URL passed to publisher: {url}, missing workspace"
            )
        if "project" not in result:
            raise TemplateRenderError(
                f"Invalid repo URL passed to publisher: {url}, missing project"
            )
    elif "dev.azure.com" in host or host.endswith("visualstudio.com"):
        if "project" not in result:
            raise TemplateRenderError(
                f"Invalid repo URL passed to publisher: {url}, missing project"
            )
    elif "owner" not in result:
        raise TemplateRenderError(f"Invalid repo URL passed to publisher: {url}, missing owner")
    if "repo" not in result:
        raise TemplateRenderError(f"Invalid repo URL passed to publisher: {url}, missing repo")
    return result


def parse_entity_ref(value: Any, options: Any = None) -> dict[str, str]:
    """``[kind:][namespace/]name`` → ``{kind, namespace, name}`` as the catalog parses it."""
    opts = options if isinstance(options, Mapping) else {}
    if isinstance(value, Mapping):
        kind = value.get("kind")
        namespace = value.get("namespace")
        name = value.get("name")
        shown = json.dumps(to_plain(value, 10_000))
    else:
        ref = js_str(value)
        shown = ref
        if not ref:
            raise TemplateRenderError("Entity reference must not be empty")
        colon, slash = ref.find(":"), ref.find("/")
        if slash != -1 and slash < colon:
            colon = -1  # a ':' after the namespace belongs to the name
        kind = ref[:colon] if colon != -1 else None
        namespace = ref[colon + 1 : slash] if slash != -1 else None
        name = ref[max(colon + 1, slash + 1) :]
        if kind == "" or namespace == "" or name == "":
            raise TemplateRenderError(
                f'Entity reference "{ref}" was not on the form [<kind>:][<namespace>/]<name>'
            )
    if not kind:
        kind = opts.get("defaultKind")
        if not kind:
            raise TemplateRenderError(
                f'Entity reference "{shown}" had missing or empty kind '
                '(e.g. did not start with "component:" or similar)'
            )
    if not namespace:
        namespace = opts.get("defaultNamespace") or "default"
    if not name:
        raise TemplateRenderError(f'Entity reference "{shown}" had missing or empty name')
    return {"kind": str(kind), "namespace": str(namespace), "name": str(name)}


@pass_environment
def pick(environment: Environment, value: Any, key: Any) -> Any:
    """lodash ``get``: ``obj | pick('a.b')``; a missing path gives undefined."""
    current = value
    for part in js_str(key).replace("[", ".").replace("]", "").split("."):
        if part == "":
            continue
        if part.startswith("_"):
            raise TemplateSecurityError(f"pick: the key {part!r} is not allowed")
        if isinstance(current, Mapping):
            if part not in current:
                return environment.undefined(name=part)
            current = current[part]
        elif isinstance(current, list | tuple) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return environment.undefined(name=part)
    return current


def project_slug(value: Any) -> str:
    parsed = parse_repo_url(value)
    return f"{parsed.get('owner', '')}/{parsed['repo']}"


# -- tests and globals -----------------------------------------------------


def _is_truthy(value: Any) -> bool:
    return bool(value)


def _is_null(value: Any) -> bool:
    return value is None


@pass_context
def always(context: Context) -> bool:
    del context
    return True


@pass_context
def failure(context: Context) -> bool:
    return bool(context.get("__status") == "failed")


@pass_context
def success(context: Context) -> bool:
    return bool(context.get("__status", "ok") != "failed")


def safe_range(*args: int) -> range:
    numbers = range(*(int(a) for a in args))
    if len(numbers) > MAX_ITEMS:
        raise TemplateSecurityError(
            f"range() of {len(numbers):,} items is over the limit of {MAX_ITEMS:,}"
        )
    return numbers


@pass_environment
def length(environment: Environment, value: Any) -> Any:
    """Nunjucks' length: 0 for undefined and null, an object's number of keys,
    undefined for what has none (a number, a boolean: ``value.length`` in JS)."""
    if value is None or isinstance(value, Undefined):
        return 0
    if isinstance(value, bool | int | float):
        return environment.undefined(name="length")
    return len(value)


def items(value: Any) -> list[list[Any]]:
    """Jinja's items as a list of [key, value] pairs (Jinja's is a generator, which
    would print as Python's repr)."""
    if value is None or isinstance(value, Undefined):
        return []
    if not isinstance(value, Mapping):
        raise TemplateRenderError(f"items needs an object, not {type(value).__name__}")
    return [[key, item] for key, item in bounded_list(value.items(), "items")]


def add_texts(environment: Environment, *parts: Any) -> str:
    """JavaScript's ``text.concat(...)``: every part as text, within the output limit."""
    texts = [js_str(part, max_output(environment)) for part in parts]
    check_size(environment, sum(len(t) for t in texts), "concat")
    return "".join(texts)


def concat_lists(items: Any, *more: Any) -> list[Any]:
    """JavaScript's ``list.concat(...)``: lists are spread, anything else appended."""
    result = list(items)
    for item in more:
        result.extend(item if isinstance(item, list | tuple) else [item])
        if len(result) > MAX_ITEMS:
            raise TemplateSecurityError(f"concat would build a list over {MAX_ITEMS:,} items")
    return result


def to_fixed(value: Any, digits: Any = 0) -> str:
    """JavaScript's ``n.toFixed(digits)``: ties round away from zero, on the
    number's exact binary value."""
    places = int(digits)
    if not 0 <= places <= 100:
        raise TemplateRenderError(f"toFixed() digits must be between 0 and 100, not {places}")
    number = float(value)
    if math.isnan(number) or math.isinf(number) or abs(number) >= 1e21:
        return js_scalar(number)
    exact = decimal.Decimal(number).quantize(
        decimal.Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_UP
    )
    text = f"{exact:f}"
    return text[1:] if text.startswith("-") and exact == 0 else text


def number_to_string(value: Any, radix: Any = 10) -> str:
    """JavaScript's ``n.toString(radix)`` (a radix other than 10 for integers only)."""
    base = int(radix)
    if base == 10 or not (isinstance(value, int) or float(value).is_integer()):
        return js_scalar(value)
    if not 2 <= base <= 36:
        raise TemplateRenderError(f"toString() radix must be between 2 and 36, not {base}")
    number = int(value)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out, rest = "", abs(number)
    while True:
        rest, digit = divmod(rest, base)
        out = digits[digit] + out
        if rest == 0:
            break
    return "-" + out if number < 0 else out


def strict_equal(left: Any, right: Any) -> bool:
    """JavaScript's ``===``: no conversion between types (``1 === true`` and
    ``null === undefined`` are false), objects and arrays equal only to themselves."""
    if isinstance(left, Undefined) or isinstance(right, Undefined):
        return isinstance(left, Undefined) and isinstance(right, Undefined)
    if left is None or right is None:
        return left is right
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    return left is right


def strict_unequal(left: Any, right: Any) -> bool:
    """JavaScript's ``!==``."""
    return not strict_equal(left, right)


FILTERS: dict[str, Callable[..., Any]] = {
    "dump": dump,
    "tojson": tojson,
    "sum": sum_,
    "jsonify": dump,
    "join": join,
    "replace": replace,
    "indent": indent,
    "center": center,
    "reverse": reverse,
    "urlencode": urlencode,
    "string": string,
    "int": to_int,
    "float": to_float,
    "truncate": truncate,
    "title": title,
    "groupby": groupby,
    "nl2br": nl2br,
    "escape": escape,
    "e": escape,
    "forceescape": forceescape,
    "urlize": urlize,
    "list": to_list,
    "sort": sort,
    **{name: _as_text(name) for name in ("trim", "upper", "lower", "capitalize", "wordcount")},
    **{name: _as_text(name) for name in ("striptags", "safe")},
    "batch": batch,
    "slice": slice_,
    "nunjucks_pairs": items_pairs,
    "nunjucks_concat": concat,
    "length": length,
    "count": length,
    "items": items,
    "nunjucks_strict_eq": strict_equal,
    "nunjucks_strict_ne": strict_unequal,
    "parseRepoUrl": parse_repo_url,
    "parseEntityRef": parse_entity_ref,
    "pick": pick,
    "projectSlug": project_slug,
}

# Jinja filters with no Nunjucks counterpart whose output size depends on an
# argument rather than the input, or that print Python internals.
REMOVED_FILTERS = ("format", "pprint", "xmlattr", "filesizeformat", "wordwrap")

TESTS: dict[str, Callable[..., bool]] = {
    "truthy": _is_truthy,
    "falsy": lambda value: not value,
    "null": _is_null,
}

GLOBALS: dict[str, Any] = {  # (Jinja's dict() is gone: Nunjucks has none)
    "range": safe_range,
    "always": always,
    "failure": failure,
    "success": success,
    "null": None,
    "nunjucks_regex": nunjucks_regex,
}

REMOVED_GLOBALS = ("lipsum", "cycler", "joiner", "namespace", "dict")
