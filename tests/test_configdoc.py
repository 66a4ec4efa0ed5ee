"""docs/config.md's table of keys is generated from the schema and must match it."""

import yaml

from hwbench import configdoc
from tests.conftest import REPO


def test_config_page_table_matches_schema():
    page = (REPO / configdoc.DOC).read_text(encoding="utf-8")
    expected = configdoc.replace_block(page, configdoc.table(REPO / configdoc.SCHEMA))
    assert page == expected, f"{configdoc.DOC}'s table is stale: run `python -m hwbench.configdoc`"


def test_every_config_key_has_a_description():
    schema = REPO / configdoc.SCHEMA
    doc = yaml.safe_load(schema.read_text())
    rows = configdoc.rows(doc, schema.parent, doc)
    assert rows, "schema yielded no keys"
    undocumented = [key for key, _, desc in rows if not desc]
    assert not undocumented, f"config keys without a description: {undocumented}"


def test_table_follows_file_and_pointer_refs(tmp_path):
    (tmp_path / "top.yaml").write_text(
        "type: object\nproperties:\n  a: {$ref: 'part.yaml'}\n", encoding="utf-8"
    )
    (tmp_path / "part.yaml").write_text(
        "description: section A\ntype: object\n"
        "additionalProperties: {$ref: '#/$defs/item'}\n"
        "$defs:\n  item:\n    description: one item\n    type: object\n"
        "    properties:\n      k: {type: integer, description: the k}\n",
        encoding="utf-8",
    )
    doc = yaml.safe_load((tmp_path / "top.yaml").read_text())
    rows = configdoc.rows(doc, tmp_path, doc)
    assert rows == [
        ("a", "object", "section A"),
        ("a.<name>", "object", "one item"),
        ("a.<name>.k", "integer", "the k"),
    ]


def _null_keys(node, path=""):
    """Keys with a null value: what an unquoted comma in a flow-mapping description leaves."""
    if isinstance(node, dict):
        for key, value in node.items():
            if value is None and key != "default":
                yield f"{path}/{key}"
            yield from _null_keys(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _null_keys(value, f"{path}/{i}")


def test_schema_files_have_no_stray_null_keys():
    for path in sorted((REPO / "workflow/schemas").glob("*.yaml")):
        stray = list(_null_keys(yaml.safe_load(path.read_text(encoding="utf-8"))))
        assert not stray, f"{path.name}: keys without value (quote commas): {stray}"
