"""Parses a metrics file with prometheus_client's text parser (what node_exporter's textfile
collector format readers accept) and prints its families as JSON for the Rust tests:
[{"name", "type", "help", "samples": [{"name", "labels", "value"}]}]. Exits non-zero, with
the parser's message, if the file does not parse."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

with open(sys.argv[1], encoding="utf-8") as f:
    text = f.read()
families = []
for family in text_string_to_metric_families(text):
    families.append({
        "name": family.name,
        "type": family.type,
        "help": family.documentation,
        "samples": [
            {"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples
        ],
    })
json.dump(families, sys.stdout)
