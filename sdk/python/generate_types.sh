#!/usr/bin/env bash
# Writes src/tollgate/types.py from ../openapi.json (the document the admin service
# serves, checked in). Usage: ./generate_types.sh [output]  (default: the package's).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/src/tollgate/types.py}"
datamodel-codegen --input "$here/../openapi.json" --input-file-type openapi \
    --output-model-type pydantic_v2.BaseModel --output "$out" \
    --field-constraints --target-python-version 3.10 --use-schema-description \
    --disable-timestamp --collapse-root-models --extra-fields ignore \
    --formatters black isort \
    --custom-file-header '# Generated from sdk/openapi.json by sdk/python/generate_types.sh; do not edit.' \
    2>/dev/null
