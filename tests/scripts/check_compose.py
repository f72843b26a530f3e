"""Checks infra/compose the way `docker compose config` would, where no compose plugin runs:
each file, its variables filled in from env.example as Compose interpolates them, must
validate against the Compose Specification's schema (infra/compose/schema); every variable a
file uses must be documented in env.example; every service an overlay names, and every
service and volume compose.yaml refers to, must exist. Exits 1 with what is wrong."""

import json
import re
import sys
from pathlib import Path

import jsonschema
import yaml

FOLDER = Path(sys.argv[1])
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def settings() -> dict:
    values = {}
    for line in (FOLDER / "env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def interpolate(text: str, values: dict, problems: list, file: str) -> str:
    def fill(match):
        name, operator, default = match.group(1), match.group(2), match.group(3)
        if name not in values:
            problems.append(f"{file}: ${{{name}}} is not in env.example")
        value = values.get(name, "")
        if value == "" and operator in (":-", "-"):
            return default
        return value

    return VARIABLE.sub(fill, text.replace("$$", "\0")).replace("\0", "$")


class ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's merge tags (`!reset`, `!override`), read as their values."""


for tag in ("!reset", "!override"):
    ComposeLoader.add_constructor(
        tag,
        lambda loader, node: loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node)
        if isinstance(node, yaml.MappingNode)
        else loader.construct_scalar(node),
    )


def main() -> int:
    schema = json.loads((FOLDER / "schema" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    values = settings()
    problems = []
    documents = {}
    for path in sorted(FOLDER.glob("compose*.yaml")):
        text = interpolate(path.read_text(), values, problems, path.name)
        document = yaml.load(text, Loader=ComposeLoader)
        documents[path.name] = document
        for error in validator.iter_errors(document):
            where = "/".join(str(part) for part in error.absolute_path)
            problems.append(f"{path.name}: {where}: {error.message}")
    base = documents.get("compose.yaml") or {}
    services = base.get("services", {})
    volumes = set(base.get("volumes", {}))
    for name, service in services.items():
        depends = service.get("depends_on", [])
        for needed in depends if isinstance(depends, list) else depends.keys():
            if needed not in services:
                problems.append(f"compose.yaml: {name} depends on {needed}, which is no service")
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if source and not source.startswith((".", "/")) and source not in volumes:
                problems.append(f"compose.yaml: {name} mounts volume {source}, which is not declared")
    for file, document in documents.items():
        if file == "compose.yaml":
            continue
        for name in document.get("services", {}):
            added = document["services"][name].get("image") or document["services"][name].get("build", {}).get("dockerfile")
            if name not in services and not added:
                problems.append(f"{file}: overlays {name}, which compose.yaml does not define")
    for problem in problems:
        print(problem)
    print(f"checked {', '.join(sorted(documents))}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
