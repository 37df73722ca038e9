#!/usr/bin/env python3
"""The public API of the `cadenas` crate, one item per line, from rustdoc's JSON output.

    python3 tools/public_api.py target/doc/cadenas.json > core/public-api.txt

`make lint` builds the JSON (rustdoc's JSON output is unstable: it is asked for with
RUSTC_BOOTSTRAP=1 on the one stable toolchain) and fails when the list differs from
core/public-api.txt, so every change to the public surface is deliberate: regenerate the file
with `make public-api` and commit it with the change. Every item is listed at each public path
it can be named by; an item with two public paths is an error (exit 1: one public path per
item is the rule). Lines: `kind path`, fields and variants, method signatures, trait impls (without the
auto traits and blanket impls). Deprecated items say so.
"""

from __future__ import annotations

import json
import sys
from typing import Any

AUTO_TRAITS = {"Send", "Sync", "Unpin", "UnwindSafe", "RefUnwindSafe", "Freeze", "StructuralPartialEq"}


class Api:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.index: dict[str, Any] = doc["index"]
        self.paths: dict[str, Any] = doc["paths"]
        self.crate = self.index[str(doc["root"])]["name"]
        # an item's public path (the shortest it is listed at), for naming it in signatures
        self.public: dict[str, str] = {}
        self.paths_of: dict[str, set[str]] = {}
        # (the item's path, 0 for the item itself or 1 for a member, the line)
        self.lines: set[tuple[str, int, str]] = set()

    # -- types -------------------------------------------------------------------------------
    def ty(self, t: Any) -> str:
        if t is None:
            return "()"
        ((kind, v),) = t.items()
        if kind == "primitive":
            return str(v)
        if kind == "generic":
            return str(v)
        if kind == "resolved_path":
            return self.path(v)
        if kind == "borrowed_ref":
            lt = f"{v['lifetime']} " if v.get("lifetime") else ""
            return f"&{lt}{'mut ' if v['is_mutable'] else ''}{self.ty(v['type'])}"
        if kind == "raw_pointer":
            return f"*{'mut' if v['is_mutable'] else 'const'} {self.ty(v['type'])}"
        if kind == "tuple":
            return "(" + ", ".join(self.ty(x) for x in v) + ("," if len(v) == 1 else "") + ")"
        if kind == "slice":
            return f"[{self.ty(v)}]"
        if kind == "array":
            return f"[{self.ty(v['type'])}; {v['len']}]"
        if kind == "impl_trait":
            return "impl " + " + ".join(self.bound(b) for b in v)
        if kind == "dyn_trait":
            parts = [self.path(p["trait"]) for p in v["traits"]]
            if v.get("lifetime"):
                parts.append(v["lifetime"])
            return "dyn " + " + ".join(parts)
        if kind == "qualified_path":
            trait = self.path(v["trait"]) if v.get("trait") else "?"
            return f"<{self.ty(v['self_type'])} as {trait}>::{v['name']}"
        if kind == "function_pointer":
            sig = v["sig"]
            args = ", ".join(self.ty(a[1]) for a in sig["inputs"])
            return f"fn({args}) -> {self.ty(sig['output'])}"
        return str(kind)

    def path(self, p: dict[str, Any]) -> str:
        name = str(p["path"])
        known = self.paths.get(str(p.get("id")))
        if str(p.get("id")) in self.public:
            name = self.public[str(p.get("id"))]
        elif known is not None and known.get("crate_id") == 0:
            name = "::".join(known["path"])
        return name + self.args(p.get("args"))

    def args(self, a: Any) -> str:
        if not a:
            return ""
        if "angle_bracketed" in a:
            ab = a["angle_bracketed"]
            parts = []
            for x in ab["args"]:
                if "type" in x:
                    parts.append(self.ty(x["type"]))
                elif "lifetime" in x:
                    parts.append(x["lifetime"])
                elif "const" in x:
                    parts.append(str(x["const"].get("expr")))
            for c in ab.get("constraints", []):
                binding = c.get("binding", {})
                if "equality" in binding:
                    eq = binding["equality"]
                    parts.append(f"{c['name']} = {self.ty(eq['type']) if 'type' in eq else eq}")
                else:
                    parts.append(
                        f"{c['name']}: " + " + ".join(self.bound(b) for b in binding.get("constraint", []))
                    )
            return "<" + ", ".join(parts) + ">" if parts else ""
        if "parenthesized" in a:
            pa = a["parenthesized"]
            out = "(" + ", ".join(self.ty(x) for x in pa["inputs"]) + ")"
            return out + (f" -> {self.ty(pa['output'])}" if pa.get("output") else "")
        return ""

    def bound(self, b: Any) -> str:
        if "trait_bound" in b:
            return self.path(b["trait_bound"]["trait"])
        if "outlives" in b:
            return str(b["outlives"])
        return "?"

    def generics(self, g: Any) -> str:
        params = []
        for p in g.get("params", []):
            kind = p["kind"]
            if "type" in kind:
                if kind["type"].get("is_synthetic"):
                    continue
                bounds = " + ".join(self.bound(b) for b in kind["type"]["bounds"])
                params.append(p["name"] + (f": {bounds}" if bounds else ""))
            elif "lifetime" in kind:
                params.append(p["name"])
            elif "const" in kind:
                params.append(f"const {p['name']}: {self.ty(kind['const']['type'])}")
        return "<" + ", ".join(params) + ">" if params else ""

    def fn_sig(self, name: str, f: Any) -> str:
        h = f["header"]
        quals = "".join(
            q
            for q, on in (("const ", h["is_const"]), ("async ", h["is_async"]), ("unsafe ", h["is_unsafe"]))
            if on
        )
        inputs = []
        for arg, t in f["sig"]["inputs"]:
            if arg == "self":
                inputs.append(self.ty(t).replace("Self", "self") if t != {"generic": "Self"} else "self")
            else:
                inputs.append(f"{arg}: {self.ty(t)}")
        out = f["sig"]["output"]
        ret = f" -> {self.ty(out)}" if out is not None else ""
        return f"{quals}fn {name}{self.generics(f['generics'])}({', '.join(inputs)}){ret}"

    # -- items -------------------------------------------------------------------------------
    def add(self, line: str, item: dict[str, Any], path: str, member: bool = False) -> None:
        """Lists `line`, sorted under `path`: the item itself, or one of its members."""
        if item.get("deprecation"):
            line += "  #[deprecated]"
        self.lines.add((path, 1 if member else 0, line))

    def flags(self, item: dict[str, Any]) -> str:
        return "#[non_exhaustive] " if "non_exhaustive" in item.get("attrs", []) else ""

    def visit(self, item_id: Any, path: str, seen: set[str]) -> None:
        item = self.index.get(str(item_id))
        if item is None:
            return
        ((kind, inner),) = item["inner"].items()
        key = f"{item_id}@{path}"
        if key in seen:
            return
        seen.add(key)
        known = self.public.get(str(item_id))
        if known is None or (len(path), path) < (len(known), known):
            self.public[str(item_id)] = path
        self.paths_of.setdefault(str(item_id), set()).add(path)
        if kind == "module":
            self.add(f"mod {path}", item, path)
            for child in inner["items"]:
                c = self.index.get(str(child))
                if c is None or c["visibility"] != "public":
                    continue
                ((ck, cv),) = c["inner"].items()
                if ck == "use":
                    if cv["id"] is None or str(cv["id"]) not in self.index:
                        self.add(f"pub use {path}::{cv['name']} = {cv['source']}", c, f"{path}::{cv['name']}")
                        continue
                    target = self.index[str(cv["id"])]
                    if cv["is_glob"]:
                        tk = next(iter(target["inner"]))
                        if tk == "module":
                            for g in target["inner"]["module"]["items"]:
                                gi = self.index.get(str(g))
                                if gi is not None and gi["visibility"] == "public" and gi.get("name"):
                                    self.visit(g, f"{path}::{gi['name']}", seen)
                        continue
                    self.visit(cv["id"], f"{path}::{cv['name']}", seen)
                elif c.get("name"):
                    self.visit(child, f"{path}::{c['name']}", seen)
        elif kind == "struct":
            sk = inner["kind"]
            self.add(f"{self.flags(item)}struct {path}{self.generics(inner['generics'])}", item, path)
            if "plain" in sk:
                for f in sk["plain"]["fields"]:
                    fi = self.index[str(f)]
                    self.add(
                        f"  field {path}::{fi['name']}: {self.ty(fi['inner']['struct_field'])}",
                        fi,
                        path,
                        True,
                    )
            elif "tuple" in sk:
                for n, f in enumerate(sk["tuple"]):
                    if f is not None:
                        fi = self.index[str(f)]
                        self.add(
                            f"  field {path}::{n}: {self.ty(fi['inner']['struct_field'])}", fi, path, True
                        )
            self.impls(path, inner["impls"])
        elif kind == "enum":
            self.add(f"{self.flags(item)}enum {path}{self.generics(inner['generics'])}", item, path)
            for v in inner["variants"]:
                vi = self.index[str(v)]
                vk = vi["inner"]["variant"]["kind"]
                shape = ""
                if isinstance(vk, dict) and "tuple" in vk:
                    shape = (
                        "("
                        + ", ".join(
                            self.ty(self.index[str(f)]["inner"]["struct_field"]) if f is not None else "_"
                            for f in vk["tuple"]
                        )
                        + ")"
                    )
                elif isinstance(vk, dict) and "struct" in vk:
                    names = [
                        self.index[str(f)]["name"]
                        + ": "
                        + self.ty(self.index[str(f)]["inner"]["struct_field"])
                        for f in vk["struct"]["fields"]
                    ]
                    shape = " { " + ", ".join(names) + " }"
                self.add(f"  {self.flags(vi)}variant {path}::{vi['name']}{shape}", vi, path, True)
            self.impls(path, inner["impls"])
        elif kind == "trait":
            self.add(f"trait {path}{self.generics(inner['generics'])}", item, path)
            for t in inner["items"]:
                ti = self.index[str(t)]
                self.member(path, ti)
        elif kind == "function":
            self.add(self.fn_sig(path, inner), item, path)
        elif kind == "constant":
            self.add(f"const {path}: {self.ty(inner['type'])}", item, path)
        elif kind == "static":
            self.add(f"static {path}: {self.ty(inner['type'])}", item, path)
        elif kind == "type_alias":
            self.add(f"type {path}{self.generics(inner['generics'])} = {self.ty(inner['type'])}", item, path)
        elif kind == "macro":
            self.add(f"macro {path}!", item, path)
        else:
            self.add(f"{kind} {path}", item, path)

    def member(self, owner: str, mi: dict[str, Any]) -> None:
        ((mk, mv),) = mi["inner"].items()
        if mk == "function":
            name = f"{owner}::{mi['name']}"
            self.add(f"  {self.fn_sig(name, mv)}", mi, owner, True)
        elif mk == "assoc_const":
            self.add(f"  const {owner}::{mi['name']}: {self.ty(mv['type'])}", mi, owner, True)
        elif mk == "assoc_type":
            self.add(f"  type {owner}::{mi['name']}", mi, owner, True)

    def impls(self, path: str, impl_ids: list[Any]) -> None:
        for i in impl_ids:
            im = self.index.get(str(i))
            if im is None:
                continue
            iv = im["inner"]["impl"]
            if iv.get("is_synthetic") or iv.get("blanket_impl") is not None:
                continue
            if iv.get("trait") is None:
                for m in iv["items"]:
                    mi = self.index.get(str(m))
                    if mi is not None and mi["visibility"] == "public":
                        self.member(path, mi)
            else:
                name = self.path(iv["trait"])
                if name.split("<")[0].split("::")[-1] in AUTO_TRAITS:
                    continue
                neg = "!" if iv.get("is_negative") else ""
                self.lines.add((path, 2, f"  impl {neg}{name} for {path}"))


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    api = Api(doc)
    api.visit(doc["root"], api.crate, set())  # learns every item's public path
    api.lines.clear()
    api.visit(doc["root"], api.crate, set())
    for _path, _order, line in sorted(api.lines):
        print(line)
    twice = sorted(sorted(p) for p in api.paths_of.values() if len(p) > 1)
    for paths in twice:
        print(f"public_api: one item, {len(paths)} public paths: {', '.join(paths)}", file=sys.stderr)
    return 1 if twice else 0


if __name__ == "__main__":
    sys.exit(main())
