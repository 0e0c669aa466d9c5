"""A small JSON Schema (2020-12) validator, stdlib only, for the wire protocol's schemas in
docs/protocol/. It knows the keywords listed in KEYWORDS and refuses a schema that uses any
other one, so a keyword can never be silently ignored. References are ``#/$defs/NAME`` within
a file or ``FILE#/$defs/NAME`` to another file of the same folder.
"""

import json
import os
import re

KEYWORDS = frozenset((
    "$schema", "$id", "$defs", "$ref", "title", "description", "type", "properties", "required",
    "additionalProperties", "items", "enum", "const", "minimum", "maximum", "minLength", "maxLength",
    "minItems", "maxItems", "pattern", "anyOf"))


def _is_type(value, name):
    """Whether a decoded msgpack/JSON value has JSON Schema type ``name``."""
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, (list, tuple)),
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }[name](value)


class Registry:
    """Every ``*.schema.json`` of a folder, by file name."""

    def __init__(self, folder):
        self.folder = folder
        self.schemas = {}
        for name in sorted(os.listdir(folder)):
            if name.endswith(".schema.json"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    self.schemas[name] = json.load(f)
        for name, schema in self.schemas.items():
            self._check_keywords(schema, name, "")

    def _check_keywords(self, schema, file, where):
        """Raises ValueError on a keyword this validator does not implement, or a broken $ref."""
        if not isinstance(schema, dict):
            raise ValueError(f"{file}{where}: a schema must be an object")
        unknown = set(schema) - KEYWORDS
        if unknown:
            raise ValueError(f"{file}{where}: unsupported keyword(s) {sorted(unknown)}")
        if "$ref" in schema:
            self.resolve(schema["$ref"], file)
        for key in ("properties", "$defs"):
            for name, sub in schema.get(key, {}).items():
                self._check_keywords(sub, file, f"{where}/{key}/{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                self._check_keywords(schema[key], file, f"{where}/{key}")
        for n, sub in enumerate(schema.get("anyOf", [])):
            self._check_keywords(sub, file, f"{where}/anyOf/{n}")

    def resolve(self, ref, file):
        """The (schema, file) a reference names."""
        target, _, pointer = ref.partition("#")
        target = target or file
        if target not in self.schemas:
            raise ValueError(f"{file}: $ref {ref!r}: no schema file {target!r}")
        node = self.schemas[target]
        for part in [p for p in pointer.split("/") if p]:
            if not isinstance(node, dict) or part not in node:
                raise ValueError(f"{file}: $ref {ref!r}: nothing at {pointer!r}")
            node = node[part]
        return node, target

    def errors(self, instance, file):
        """Every way ``instance`` fails the schema in ``file`` (empty list: valid)."""
        return self._errors(instance, self.schemas[file], file, "$")

    def _errors(self, value, schema, file, path):
        """The errors of one value against one (sub)schema."""
        if "$ref" in schema:
            target, target_file = self.resolve(schema["$ref"], file)
            return self._errors(value, target, target_file, path)
        if "anyOf" in schema:
            branches = [self._errors(value, s, file, path) for s in schema["anyOf"]]
            if all(branches):
                best = min(branches, key=len)
                return [f"{path}: matches none of anyOf ({'; '.join(best[:3])})"]
        return self._type_errors(value, schema, path) or self._value_errors(value, schema, file, path)

    @staticmethod
    def _type_errors(value, schema, path):
        """Type, const and enum."""
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(_is_type(value, t) for t in types):
                return [f"{path}: {type(value).__name__} is not of type {'/'.join(types)}"]
        if "const" in schema and not (value == schema["const"] and type(value) is type(schema["const"])):
            return [f"{path}: {value!r} is not {schema['const']!r}"]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{path}: {value!r} is not one of {schema['enum']}"]
        return []

    def _value_errors(self, value, schema, file, path):
        """Bounds, and the members of objects and arrays."""
        out = []
        if _is_type(value, "number"):
            if "minimum" in schema and value < schema["minimum"]:
                out.append(f"{path}: {value} < minimum {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                out.append(f"{path}: {value} > maximum {schema['maximum']}")
        if isinstance(value, str):
            if len(value) < schema.get("minLength", 0):
                out.append(f"{path}: shorter than {schema['minLength']}")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                out.append(f"{path}: longer than {schema['maxLength']}")
            if "pattern" in schema and not re.search(schema["pattern"], value):
                out.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if isinstance(value, dict):
            out += self._object_errors(value, schema, file, path)
        if isinstance(value, (list, tuple)):
            if len(value) < schema.get("minItems", 0):
                out.append(f"{path}: fewer than {schema['minItems']} items")
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                out.append(f"{path}: more than {schema['maxItems']} items")
            if "items" in schema:
                for n, item in enumerate(value):
                    out += self._errors(item, schema["items"], file, f"{path}[{n}]")
        return out

    def _object_errors(self, value, schema, file, path):
        """required, properties and additionalProperties."""
        out = [f"{path}: missing {key!r}" for key in schema.get("required", []) if key not in value]
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, member in value.items():
            if key in props:
                out += self._errors(member, props[key], file, f"{path}.{key}")
            elif extra is False:
                out.append(f"{path}: unexpected field {key!r}")
            elif isinstance(extra, dict):
                out += self._errors(member, extra, file, f"{path}.{key}")
        return out
