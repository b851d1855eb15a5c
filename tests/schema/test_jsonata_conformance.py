"""JSONata as users rely on it: the documentation's examples of every function and operator, through Drift's API.

Each case is an example from the JSONata documentation (docs.jsonata.org), evaluated
with `drift_schema.expressions.evaluate`. A change of engine, of its version, or of
Drift's bounds and patches must not quietly change any of these answers. Examples that
read data use the documentation's sample document, bound as `$global` and read
through `$global.( ... )`.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from drift_schema import expressions

DOCUMENT: dict[str, Any] = {
    "FirstName": "Fred",
    "Surname": "Smith",
    "Age": 28,
    "Address": {"Street": "Hursley Park", "City": "Winchester", "Postcode": "SO21 2JN"},
    "Phone": [
        {"type": "home", "number": "0203 544 1234"},
        {"type": "office", "number": "01962 001234"},
        {"type": "office", "number": "01962 001235"},
        {"type": "mobile", "number": "077 7700 1234"},
    ],
    "Email": [
        {"type": "work", "address": ["fred.smith@my-work.com", "fsmith@my-work.com"]},
        {"type": "home", "address": ["freddy@my-social.com", "frederic.smith@very-serious.com"]},
    ],
    "Other": {
        "Over 18 ?": True,
        "Misc": None,
        "Alternative.Address": {"Street": "Brick Lane", "City": "London", "Postcode": "E1 6RF"},
    },
}
"""The documentation's sample document (the "Fred Smith" example)."""

HOME = {"type": "home", "number": "0203 544 1234"}
OFFICE_1 = {"type": "office", "number": "01962 001234"}
OFFICE_2 = {"type": "office", "number": "01962 001235"}
MOBILE = {"type": "mobile", "number": "077 7700 1234"}
NUMBERS = ["0203 544 1234", "01962 001234", "01962 001235", "077 7700 1234"]

PATHS = [
    ("Surname", "Smith"),
    ("Age", 28),
    ("Address.City", "Winchester"),
    ("Other.Misc", None),
    ("Other.Nothing", None),
    ("Other.`Over 18 ?`", True),
    ("Other.`Alternative.Address`.City", "London"),
    ("Phone[0]", HOME),
    ("Phone[1]", OFFICE_1),
    ("Phone[-1]", MOBILE),
    ("Phone[-2]", OFFICE_2),
    ("Phone[8]", None),
    ("Phone[0].number", "0203 544 1234"),
    ("Phone.number", NUMBERS),
    ("Phone.number[0]", NUMBERS),
    ("(Phone.number)[0]", "0203 544 1234"),
    ("Phone[[0..1]]", [HOME, OFFICE_1]),
    ("Phone[type='mobile']", MOBILE),
    ("Phone[type='mobile'].number", "077 7700 1234"),
    ("Phone[type='office'].number", ["01962 001234", "01962 001235"]),
    ("Address.*", ["Hursley Park", "Winchester", "SO21 2JN"]),
    ("*.Postcode", "SO21 2JN"),
    ("**.Postcode", ["SO21 2JN", "E1 6RF"]),
    ("Email.address", [*DOCUMENT["Email"][0]["address"], *DOCUMENT["Email"][1]["address"]]),
    ("Email[type='home'].address", DOCUMENT["Email"][1]["address"]),
    (
        "Phone.{type: number}",
        [
            {"home": "0203 544 1234"},
            {"office": "01962 001234"},
            {"office": "01962 001235"},
            {"mobile": "077 7700 1234"},
        ],
    ),
    (
        "Phone{type: number}",
        {"home": "0203 544 1234", "office": ["01962 001234", "01962 001235"], "mobile": "077 7700 1234"},
    ),
    (
        "Phone{type: number[]}",
        {"home": ["0203 544 1234"], "office": ["01962 001234", "01962 001235"], "mobile": ["077 7700 1234"]},
    ),
    ("Phone{type: $count(number)}", {"home": 1, "office": 2, "mobile": 1}),
    ("Address.(Street & ', ' & City)", "Hursley Park, Winchester"),
    ("FirstName & ' ' & Surname", "Fred Smith"),
    ("Phone^(number).number", sorted(NUMBERS)),
    ("Phone^(>number).number", sorted(NUMBERS, reverse=True)),
    ("Phone^(type, >number).number", ["0203 544 1234", "077 7700 1234", "01962 001235", "01962 001234"]),
    ("Phone#$i[$i < 2].number", ["0203 544 1234", "01962 001234"]),
    ("Phone#$i.{'n': $i, 't': type}[1]", {"n": 1, "t": "office"}),
    ("Phone@$p[$p.type = 'mobile'].$p.number", "077 7700 1234"),
    ("Email.address.{'type': %.type, 'address': $}[0]", {"type": "work", "address": "fred.smith@my-work.com"}),
    ("Age > 18 ? 'adult' : 'minor'", "adult"),
    ("Age < 18 ? 'minor'", None),
    ("Address.City ~> $uppercase()", "WINCHESTER"),
    ("$count(Phone)", 4),
    ("$keys(Address)", ["Street", "City", "Postcode"]),
    ("$lookup(Address, 'City')", "Winchester"),
    ("$exists(Other.Nothing)", False),
    ("$exists(Address)", True),
    ("$sift(Address, function($v, $k) { $contains($k, /^S/) })", {"Street": "Hursley Park"}),
    (
        "$each(Address, function($v, $k) { $k & ': ' & $v })",
        ["Street: Hursley Park", "City: Winchester", "Postcode: SO21 2JN"],
    ),
    (
        "$map(Phone, function($v, $i) { $string($i) & ': ' & $v.type })",
        ["0: home", "1: office", "2: office", "3: mobile"],
    ),
    ("$sort(Phone, function($l, $r) { $l.number > $r.number }).type", ["office", "office", "home", "mobile"]),
]
"""Path operators, predicates, wildcards, sorting, grouping, positional and context variables."""

TOP_LEVEL = [
    ("$global.Address.City[]", ["Winchester"]),
    ("$global.Phone[type='home'].number[]", ["0203 544 1234"]),
    ("($global ~> | Address | {'City': 'Manchester'} |).Address.City", "Manchester"),
    ("($global ~> | Phone | {}, ['type'] |).Phone", [{"number": n} for n in NUMBERS]),
    ("($global ~> | Phone[type='mobile'] | {'type': 'cell'} |).Phone.type", ["home", "office", "office", "cell"]),
    ("$global ~> | Address | {}, ['Street', 'Postcode'] | ~> $lookup('Address')", {"City": "Winchester"}),
]
"""Keep-array (`[]`, which a `$global.( ... )` wrapper would undo) and transforms of the whole document."""

STRINGS = [
    ("$string(5)", "5"),
    ("$string(22/7)", "3.14285714285714"),
    ("$string([1, 2, 'x'])", '[1,2,"x"]'),
    ("$string({'a': 1, 'b': true})", '{"a":1,"b":true}'),
    ("$string({'a': [1, 2]}, true)", '{\n  "a": [\n    1,\n    2\n  ]\n}'),
    ("$length('Hello World')", 11),
    ("$substring('Hello World', 3)", "lo World"),
    ("$substring('Hello World', 3, 5)", "lo Wo"),
    ("$substring('Hello World', -4)", "orld"),
    ("$substring('Hello World', -4, 2)", "or"),
    ("$substringBefore('Hello World', ' ')", "Hello"),
    ("$substringAfter('Hello World', ' ')", "World"),
    ("$uppercase('Hello World')", "HELLO WORLD"),
    ("$lowercase('Hello World')", "hello world"),
    ("$trim('   Hello    \\n World  ')", "Hello World"),
    ("$pad('foo', 5)", "foo  "),
    ("$pad('foo', -5)", "  foo"),
    ("$pad('foo', -5, '#')", "##foo"),
    ("$pad($formatBase(35, 2), -8, '0')", "00100011"),
    ("$contains('abracadabra', 'bra')", True),
    ("$contains('abracadabra', /a.*a/)", True),
    ("$contains('abracadabra', /ar.*a/)", False),
    ("$contains('Hello World', /wo/)", False),
    ("$contains('Hello World', /wo/i)", True),
    ("$split('so many words', ' ')", ["so", "many", "words"]),
    ("$split('so many words', ' ', 2)", ["so", "many"]),
    ("$split('too much, punctuation. hard; to read', /[ ,.;]+/)", ["too", "much", "punctuation", "hard", "to", "read"]),
    ("$join(['a', 'b', 'c'])", "abc"),
    ("$join(['a', 'b', 'c'], ',')", "a,b,c"),
    ("$join($split('too much, punctuation. hard; to read', /[ ,.;]+/, 3), ', ')", "too, much, punctuation"),
    (
        "$match('ababbabbcc', /a(b+)/)",
        [
            {"match": "ab", "index": 0, "groups": ["b"]},
            {"match": "abb", "index": 2, "groups": ["bb"]},
            {"match": "abb", "index": 5, "groups": ["bb"]},
        ],
    ),
    ("$match('ababbabbcc', /a(b+)/, 1)", {"match": "ab", "index": 0, "groups": ["b"]}),
    ("$replace('John Smith and John Jones', 'John', 'Mr')", "Mr Smith and Mr Jones"),
    ("$replace('John Smith and John Jones', 'John', 'Mr', 1)", "Mr Smith and John Jones"),
    ("$replace('abracadabra', /a.*?a/, '*')", "*c*bra"),
    ("$replace('John Smith', /(\\w+)\\s(\\w+)/, '$2, $1')", "Smith, John"),
    ("$replace('265USD', /([0-9]+)USD/, '$$$1')", "$265"),
    (
        "$replace('temperature = 68F today', /(-?\\d+(?:\\.\\d*)?)F\\b/, "
        "function($m) { ($number($m.groups[0]) - 32) * 5/9 & 'C' })",
        "temperature = 20C today",
    ),
    ("$eval('[1,2,3]')", [1, 2, 3]),
    ("$eval('[1,$string(2),3]')", [1, "2", 3]),
    ("$base64encode('myuser:mypass')", "bXl1c2VyOm15cGFzcw=="),
    ("$base64decode('bXl1c2VyOm15cGFzcw==')", "myuser:mypass"),
    ("$encodeUrlComponent('?x=test')", "%3Fx%3Dtest"),
    ("$encodeUrl('https://mozilla.org/?x=шеллы')", "https://mozilla.org/?x=%D1%88%D0%B5%D0%BB%D0%BB%D1%8B"),
    ("$decodeUrlComponent('%3Fx%3Dtest')", "?x=test"),
    ("$decodeUrl('https://mozilla.org/?x=%D1%88%D0%B5%D0%BB%D0%BB%D1%8B')", "https://mozilla.org/?x=шеллы"),
    ("'Hello' & ' ' & 'World'", "Hello World"),
    ("'Result: ' & 5", "Result: 5"),
]

NUMBERS_ = [
    ("$number('5')", 5),
    ("$number('-0.05')", -0.05),
    ("$number('1e2')", 100),
    ("$number('1.0e-2')", 0.01),
    ("$number(true)", 1),
    ("$abs(5)", 5),
    ("$abs(-5)", 5),
    ("$floor(5.3)", 5),
    ("$floor(5.8)", 5),
    ("$floor(-5.3)", -6),
    ("$ceil(5.3)", 6),
    ("$ceil(5.8)", 6),
    ("$ceil(-5.3)", -5),
    ("$round(123.456)", 123),
    ("$round(123.456, 2)", 123.46),
    ("$round(123.456, -1)", 120),
    ("$round(123.456, -2)", 100),
    ("$round(11.5)", 12),
    ("$round(12.5)", 12),
    ("$round(125, -1)", 120),
    ("$power(2, 8)", 256),
    ("$power(2, -2)", 0.25),
    ("$sqrt(4)", 2),
    ("$round($sqrt(2), 12)", 1.414213562373),
    ("$formatNumber(12345.6, '#,###.00')", "12,345.60"),
    ("$formatNumber(1234.5678, '00.000e0')", "12.346e2"),
    ("$formatNumber(34.5, '#0.00;(#0.00)')", "34.50"),
    ("$formatNumber(-34.5, '#0.00;(#0.00)')", "(34.50)"),
    ("$formatNumber(0.14, '01%')", "14%"),
    ("$formatNumber(0.14, '###pm', {'per-mille': 'pm'})", "140pm"),
    ("$formatBase(100, 2)", "1100100"),
    ("$formatBase(2555, 16)", "9fb"),
    ("$formatInteger(2789, 'w')", "two thousand, seven hundred and eighty-nine"),
    ("$formatInteger(1999, 'I')", "MCMXCIX"),
    ("$parseInteger('twelve thousand, four hundred and seventy-six', 'w')", 12476),
    ("$parseInteger('12,345,678', '#,##0')", 12345678),
    ("5 + 2", 7),
    ("5 - 2", 3),
    ("5 * 2", 10),
    ("5 / 2", 2.5),
    ("5 % 2", 1),
    ("-(5 + 2)", -7),
    ("(3*(4-2)+1.01e2)/-2", -53.5),
]

AGGREGATION = [
    ("$sum([5, 1, 3, 7, 4])", 20),
    ("$max([5, 1, 3, 7, 4])", 7),
    ("$min([5, 1, 3, 7, 4])", 1),
    ("$average([5, 1, 3, 7, 4])", 4),
    ("$sum([])", 0),
]

BOOLEAN = [
    ("$boolean('')", False),
    ("$boolean('0')", True),
    ("$boolean(0)", False),
    ("$boolean(1)", True),
    ("$boolean([])", False),
    ("$boolean([0])", False),
    ("$boolean([0, 1])", True),
    ("$boolean({})", False),
    ("$boolean({'a': 1})", True),
    ("$boolean(function() { 1 })", False),
    ("$not(true)", False),
    ("$not('')", True),
    ("true and false", False),
    ("true or false", True),
    ("1 + 1 = 2", True),
    ("'Hello' = 'World'", False),
    ("1 + 1 != 3", True),
    ("22 / 7 > 3", True),
    ("5 >= 5", True),
    ("'a' < 'b'", True),
    ("'world' in ['hello', 'world']", True),
    ("'hello' in 'hello'", True),
    ("3 in [1, 2]", False),
]

ARRAYS = [
    ("$count([1, 2, 3, 1])", 4),
    ("$count('hello')", 1),
    ("$count([])", 0),
    ("$append([1, 2, 3], [4, 5, 6])", [1, 2, 3, 4, 5, 6]),
    ("$append([1, 2, 3], 4)", [1, 2, 3, 4]),
    ("$append('Hello', 'World')", ["Hello", "World"]),
    ("$sort([5, 2, 8, 1])", [1, 2, 5, 8]),
    ("$sort(['b', 'c', 'a'])", ["a", "b", "c"]),
    ("$reverse(['Hello', 'World'])", ["World", "Hello"]),
    ("$distinct([1, 2, 3, 3, 4, 3, 5])", [1, 2, 3, 4, 5]),
    ("$zip([1, 2, 3], [4, 5, 6])", [[1, 4], [2, 5], [3, 6]]),
    ("$zip([1, 2, 3], [4, 5], [7, 8, 9])", [[1, 4, 7], [2, 5, 8]]),
    ("[1..5]", [1, 2, 3, 4, 5]),
    ("[1..3, 7..9]", [1, 2, 3, 7, 8, 9]),
    ("[5..1]", []),
    ("[1, [2, 3], [[4]]]", [1, [2, 3], [[4]]]),
    ("[1, 2, 3][1]", 2),
    ("[1, 2, 3][-1]", 3),
    ("[1, 2, 3, 4][$ > 2]", [3, 4]),
    ("['b', 'a', 'c']^($)", ["a", "b", "c"]),
]

OBJECTS = [
    ("$keys({'a': 1, 'b': 2})", ["a", "b"]),
    ("$lookup({'a': 1, 'b': 2}, 'b')", 2),
    ("$spread({'a': 1, 'b': 2})", [{"a": 1}, {"b": 2}]),
    ("$merge([{'a': 1}, {'b': 2}])", {"a": 1, "b": 2}),
    ("$merge([{'a': 1}, {'a': 2}])", {"a": 2}),
    ("$type(1)", "number"),
    ("$type('a')", "string"),
    ("$type([1])", "array"),
    ("$type({})", "object"),
    ("$type(null)", "null"),
    ("$type(true)", "boolean"),
    ("$type(function() { 1 })", "function"),
    ("$type(Nothing)", None),
    ("{'a': 1, 'b': [1, 2], 'c': {'d': null}}", {"a": 1, "b": [1, 2], "c": {"d": None}}),
]

DATES = [
    ("$fromMillis(1510067557121)", "2017-11-07T15:12:37.121Z"),
    ("$fromMillis(1510067557121, '[M01]/[D01]/[Y0001] [h#1]:[m01][P]')", "11/07/2017 3:12pm"),
    ("$fromMillis(1510067557121, '[H01]:[m01]:[s01] [z]', '-0500')", "10:12:37 GMT-05:00"),
    ("$fromMillis(1521801216617, '[D1o] [MNn] [Y]')", "23rd March 2018"),
    ("$fromMillis(1521801216617, '[FNn], [D1o] [MNn] [Y]')", "Friday, 23rd March 2018"),
    ("$toMillis('2017-11-07T15:07:54.972Z')", 1510067274972),
    ("$toMillis('2018-01-09', '[Y]-[M]-[D]')", 1515456000000),
    ("$toMillis($fromMillis(1510067557121))", 1510067557121),
]

HIGHER_ORDER = [
    ("$map([1, 2, 3], function($v) { $v * 2 })", [2, 4, 6]),
    ("$map([1, 2, 3], $string)", ["1", "2", "3"]),
    ("$filter([1, 2, 3, 4], function($v) { $v % 2 = 0 })", [2, 4]),
    ("$filter([1, 2, 3, 4], function($v, $i) { $i < 2 })", [1, 2]),
    ("$reduce([1..5], function($i, $j) { $i * $j })", 120),
    ("$reduce([1..5], function($i, $j) { $i + $j }, 100)", 115),
    ("$single([1, 2, 3], function($v) { $v = 2 })", 2),
    ("($x := 5; $x * 2)", 10),
    ("($f := function($x) { $x * 2 }; $f(3))", 6),
    ("($f := function($x)<n:n> { $x * 2 }; $f(4))", 8),
    ("($first5 := $substring(?, 0, 5); $first5('Hello World'))", "Hello"),
    ("($uppertrim := $trim ~> $uppercase; $uppertrim('   Hello    World   '))", "HELLO WORLD"),
    ("($fact := function($n) { $n <= 1 ? 1 : $n * $fact($n - 1) }; $fact(10))", 3628800),
    ("($fib := function($n) { $n < 2 ? $n : $fib($n - 1) + $fib($n - 2) }; $fib(15))", 610),
    ("[1, 2, 3] ~> $map(function($v) { $v + 1 }) ~> $sum()", 9),
    ("(function($a, $b) { $a & $b })('x', 'y')", "xy"),
]

KNOWN_DEVIATIONS = [
    # The documentation answers "34.56": jsonata-python rounds the binary double 34.55499999... down.
    ("$formatNumber(34.555, '#0.00;(#0.00)')", "34.55"),
    ("$formatNumber(-34.555, '#0.00;(#0.00)')", "(34.55)"),
]
"""Where the engine answers otherwise than the documentation: pinned, so a change is seen, not silent."""

CASES = [
    *[(f"$global.({expr})", want) for expr, want in PATHS],
    *TOP_LEVEL,
    *KNOWN_DEVIATIONS,
    *STRINGS,
    *NUMBERS_,
    *AGGREGATION,
    *BOOLEAN,
    *ARRAYS,
    *OBJECTS,
    *DATES,
    *HIGHER_ORDER,
]


@pytest.mark.parametrize(("body", "want"), CASES, ids=[body for body, _ in CASES])
def test_documented_example(body: str, want: Any) -> None:
    """The documentation's example answers what the documentation says."""
    got = expressions.evaluate("{% " + body + " %}", {"global": DOCUMENT})
    assert got == want
    assert type(got) is type(want) or isinstance(want, float)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("$error('boom')", "D3137"),
        ("1 + 'a'", "T2002"),
        ("$sum(['a'])", "T0412"),
        ("$undefinedFunction(1)", "T1006"),
        ("$number('x1')", None),
    ],
)
def test_documented_errors(body: str, code: str | None) -> None:
    """Examples the documentation gives as errors fail as errors (with JSONata's code where it has one)."""
    with pytest.raises(expressions.ExpressionError) as raised:
        expressions.evaluate("{% " + body + " %}", {"global": DOCUMENT})
    if code is not None:
        assert raised.value.code == code


def test_now_and_millis_are_timestamps() -> None:
    """`$now()` is an ISO 8601 UTC timestamp and `$millis()` milliseconds since the epoch, of the same instant."""
    now, millis = expressions.evaluate("{% [$now(), $millis()] %}", {})
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now)
    assert expressions.evaluate("{% $toMillis($n) %}", {"n": now}) == millis
