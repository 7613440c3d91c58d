"""The README's table of what is in pynn names everything public."""
import pathlib
import re

import pytest

import pynn
from pynn import callbacks

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def api_table():
    text = README.read_text(encoding="utf-8")
    start = text.index("## What is in it")
    return text[start:text.index("\n#", start + 1)]


def missing(names):
    table = api_table()
    return [name for name in names if not re.search(rf"(?<!\w){re.escape(name)}\b", table)]


def public(names):
    return sorted(name for name in names if not name.startswith("_"))


def test_every_public_name_of_the_package_is_in_the_table():
    absent = missing(pynn.__all__)
    assert not absent, f"add {absent} to README's 'What is in it' table"


def test_every_method_and_attribute_of_sequential_is_in_the_table():
    net = pynn.Sequential([pynn.Dense(2, input_dim=3)])
    absent = missing(public(set(dir(pynn.Sequential)) | set(vars(net))))
    assert not absent, f"add {absent} to the Sequential rows of README's table"
    assert "model(x)" in api_table() and "__call__" in api_table()


def test_every_method_and_attribute_of_dense_is_in_the_table():
    layer = pynn.Dense(2, input_dim=3)
    absent = missing(public(set(dir(pynn.Dense)) | set(vars(layer))))
    assert not absent, f"add {absent} to the Dense row of README's table"


@pytest.mark.parametrize("module", [callbacks])
def test_every_class_of_the_module_is_in_the_table(module):
    names = [name for name, value in vars(module).items() if isinstance(value, type)
             and value.__module__ == module.__name__ and not name.startswith("_")]
    assert names
    absent = missing(names)
    assert not absent, f"add {absent} to README's table"


def test_the_check_can_fail():
    assert missing(["NoSuchThing", "evaluate"]) == ["NoSuchThing"]
