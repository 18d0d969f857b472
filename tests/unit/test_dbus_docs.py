"""docs/dbus-api.md must describe exactly what dbus/org.tunlab1.*.xml declares: every
interface, method (with argument names, types and directions), property (type, and whether it
signals changes) and signal, and nothing else."""

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "dbus-api.md"
EMITS = "org.freedesktop.DBus.Property.EmitsChangedSignal"


def from_xml() -> dict:
    api = {}
    for path in sorted((REPO / "dbus").glob("org.tunlab1.*.xml")):
        for interface in ElementTree.parse(path).getroot().iter("interface"):
            members = {"methods": {}, "properties": {}, "signals": {}}
            for method in interface.iter("method"):
                inputs = [(a.get("type"), a.get("name")) for a in method.iter("arg")
                          if a.get("direction", "in") == "in"]
                outputs = [(a.get("type"), a.get("name")) for a in method.iter("arg")
                           if a.get("direction") == "out"]
                members["methods"][method.get("name")] = (inputs, outputs)
            for prop in interface.iter("property"):
                emits = "true"
                for annotation in prop.iter("annotation"):
                    if annotation.get("name") == EMITS:
                        emits = annotation.get("value")
                members["properties"][prop.get("name")] = (prop.get("type"), emits)
            for signal in interface.iter("signal"):
                members["signals"][signal.get("name")] = [
                    (a.get("type"), a.get("name")) for a in signal.iter("arg")]
            api[interface.get("name")] = members
    return api


def parse_arguments(text: str) -> list:
    text = text.strip()
    if not text:
        return []
    return [tuple(argument.strip().split()) for argument in text.split(",")]


def from_doc() -> dict:
    api = {}
    interface = section = None
    for line in DOC.read_text().splitlines():
        if match := re.match(r"^## Interface (\S+)$", line):
            interface = match.group(1)
            api[interface] = {"methods": {}, "properties": {}, "signals": {}}
            section = None
        elif line.startswith("## "):
            interface = None
        elif interface and (match := re.match(r"^### (Methods|Properties|Signals)$", line)):
            section = match.group(1).lower()
        elif interface and section in ("methods", "signals") and (
                match := re.match(r"^#### (\w+)\(([^)]*)\)(?: → (.*))?$", line)):
            name, inputs, outputs = match.groups()
            if section == "methods":
                api[interface]["methods"][name] = (parse_arguments(inputs),
                                                   parse_arguments(outputs or ""))
            else:
                api[interface]["signals"][name] = parse_arguments(inputs)
        elif interface and section == "properties" and (
                match := re.match(r"^\| `(\w+)` \| ([^ |]+) \|(.*)\|$", line)):
            name, signature, notes = match.groups()
            emits = ("const" if "constant" in notes else "false" if "no signal" in notes
                     else "invalidates" if "invalidated" in notes else "true")
            api[interface]["properties"][name] = (signature, emits)
    return api


def test_every_interface_is_documented_exactly():
    assert from_doc() == from_xml()


def test_the_parser_sees_the_api():
    # Guards the test above against passing because both sides parsed to nothing.
    xml = from_xml()
    assert set(xml) == {"org.tunlab1.Manager", "org.tunlab1.Tunnel", "org.tunlab1.Peer"}
    assert "CreateTunnel" in xml["org.tunlab1.Manager"]["methods"]
    assert xml["org.tunlab1.Tunnel"]["properties"]["Counters"] == ("a{st}", "false")
