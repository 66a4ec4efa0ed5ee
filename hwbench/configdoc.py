"""The table of config keys in docs/config.md, generated from the JSON schema.

``python -m hwbench.configdoc`` rewrites the block between the markers in
docs/config.md; a test fails when that page and the schema disagree.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

START = "<!-- config-keys:start (python -m hwbench.configdoc) -->"
END = "<!-- config-keys:end -->"
SCHEMA = Path("workflow/schemas/config.schema.yaml")
DOC = Path("docs/config.md")


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _pointer(doc: dict, pointer: str) -> dict:
    node = doc
    for part in filter(None, pointer.lstrip("/").split("/")):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _resolve(node: dict, folder: Path, root: dict) -> tuple[dict, Path, dict]:
    """Follow ``$ref``s (local files and JSON pointers): (node, its folder, its document)."""
    while isinstance(node, dict) and "$ref" in node:
        ref, siblings = node["$ref"], {k: v for k, v in node.items() if k != "$ref"}
        file_part, _, pointer = ref.partition("#")
        if file_part:
            folder, root = (folder / file_part).parent, _load(folder / file_part)
        node = {**_pointer(root, pointer), **siblings}
    return node, folder, root


def _type(node: dict) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type", "")
    if kind == "array" and isinstance(node.get("items"), dict):
        return f"list of {_type(node['items']) or 'values'}"
    return kind if isinstance(kind, str) else " \\| ".join(kind)


def rows(node: dict, folder: Path, root: dict, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key path, type, description) for every key under ``node``, depth first."""
    node, folder, root = _resolve(node, folder, root)
    out = []
    children = [(f"{prefix}{k}", v) for k, v in node.get("properties", {}).items()]
    children += [
        (f"{prefix}<{p.strip('^$')}>", v) for p, v in node.get("patternProperties", {}).items()
    ]
    if isinstance(node.get("additionalProperties"), dict) and node["additionalProperties"]:
        children.append((f"{prefix}<name>", node["additionalProperties"]))
    for path, child in children:
        child, cfolder, croot = _resolve(child, folder, root)
        desc = " ".join(str(child.get("description", "")).split())
        out.append((path, _type(child), desc))
        out += rows(child, cfolder, croot, path + ".")
    return out


def table(schema_path: Path = SCHEMA) -> str:
    schema = _load(schema_path)
    lines = ["| key | type | description |", "|---|---|---|"]
    for key, kind, desc in rows(schema, schema_path.parent, schema):
        lines.append(f"| `{key}` | {kind} | {desc.replace('|', '/')} |")
    return "\n".join(lines)


def replace_block(text: str, block: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"the page lacks the markers {START!r} ... {END!r}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}\n{END}{tail}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--doc", type=Path, default=DOC, help="page to update")
    parser.add_argument("--schema", type=Path, default=SCHEMA)
    args = parser.parse_args(argv)
    text = args.doc.read_text(encoding="utf-8")
    args.doc.write_text(replace_block(text, table(args.schema)), encoding="utf-8")


if __name__ == "__main__":
    main()
