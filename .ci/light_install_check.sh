#!/usr/bin/env bash
# Smoke test of the light install (issue 12): `pip install searchclip`, without the `clip` extra,
# from the built wheel (not editable), searches and grows an existing int8 index without torch.
#
#   a. build the wheel;
#   b. check that it carries the migrations, the vocabularies, the bundled model and py.typed;
#   c. with the full dev venv (.venv), index a few generated scenes at int8 with the bundled model;
#   d. install the wheel with its base dependencies only into a fresh venv: no torch, no
#      transformers;
#   e. from the light venv: a text query, an image query, info, and indexing new images into that
#      int8 index all succeed;
#   f. from the light venv: a new index (which needs torch) and `python -m searchclip.training`
#      fail with exit 1 and one line on stderr naming searchclip[clip], no traceback.
#
# Run from anywhere; needs .venv (what .ci/run builds) and the package registries for pip.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEV=$ROOT/.venv/bin
CONSTRAINTS=$ROOT/.ci/constraints-cpu.txt
WORK=$(mktemp -d "${TMPDIR:-/tmp}/searchclip-light-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# Nothing here may reach the hub: a light install must fail on a missing extra, not a download.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
unset SEARCHCLIP_INDEX

step() { printf '\n== light install: %s\n' "$*"; }
fail() {
    printf 'light install check FAILED: %s\n' "$*" >&2
    exit 1
}

# Runs "$@" (from $WORK, so that the repository's searchclip/ is not on sys.path), which must
# exit 0; prints its stdout, and its stderr too when it fails.
must_pass() {
    local out rc=0
    out=$(cd "$WORK" && "$@" 2>"$WORK/pass.err") || rc=$?
    if [[ $rc -ne 0 ]]; then
        printf '%s\n' "$out" >&2
        cat "$WORK/pass.err" >&2
        fail "exit $rc from: $*"
    fi
    printf '%s\n' "$out"
}

# Runs "$@", which must exit 1 with one error line on stderr, naming searchclip[clip], and no
# traceback. The CLI's "index: DIR" notice, which every command prints first, may precede it.
must_need_clip() {
    local rc=0 lines
    (cd "$WORK" && "$@") >"$WORK/need.out" 2>"$WORK/need.err" || rc=$?
    grep -v '^index: ' "$WORK/need.err" >"$WORK/need.line" || true
    lines=$(grep -c '' "$WORK/need.line" || true)
    if [[ $rc -ne 1 || $lines -ne 1 ]] || ! grep -qF 'searchclip[clip]' "$WORK/need.line" \
        || grep -q 'Traceback' "$WORK/need.err"; then
        cat "$WORK/need.err" >&2
        fail "expected exit 1 and one line naming searchclip[clip] on stderr, got exit $rc and" \
            "$lines line(s) from: $*"
    fi
    printf 'exit 1: %s\n' "$(cat "$WORK/need.line")"
}

step "a. build the wheel"
"$DEV/pip" wheel -q --no-deps -w "$WORK/dist" "$ROOT"
WHEEL=$(ls "$WORK"/dist/searchclip-*.whl)
echo "$WHEEL"

step "b. the wheel's contents"
# Every file of the source folders that installed code reads at run time must be in the wheel.
"$DEV/python" - "$WHEEL" <<'EOF'
import sys
import zipfile
from pathlib import Path

names = set(zipfile.ZipFile(sys.argv[1]).namelist())


def files(folder: str, pattern: str = "**/*") -> list[Path]:
    found = sorted(
        p for p in Path(folder).glob(pattern) if p.is_file() and "__pycache__" not in p.parts
    )
    if not found:
        sys.exit(f"light install check FAILED: no files in {folder} to look for in the wheel")
    return found


# source path -> path in the wheel
wanted = {
    "searchclip/_migrations/" + p.relative_to("migrations").as_posix() for p in files("migrations")
}
wanted |= {p.as_posix() for p in files("searchclip/vocabularies")}
wanted |= {p.as_posix() for p in files("searchclip/models/shapes-clip")}
wanted |= {"searchclip/py.typed", "searchclip/_migrations/env.py"}
wanted |= {p.as_posix() for p in files("searchclip", "**/*.py")}
missing = sorted(wanted - names)
if missing:
    sys.exit("light install check FAILED: the wheel lacks\n  " + "\n  ".join(missing))
versions = sorted(n for n in names if n.startswith("searchclip/_migrations/versions/"))
print(f"{len(names)} files, all {len(wanted)} expected: migrations ({len(versions)} revisions),")
print("vocabularies, the bundled model (searchclip/models/shapes-clip), py.typed")
EOF

step "c. an int8 index of generated scenes, built with the full venv and the bundled model"
# searchclip demo writes the scenes (and its own index, at the default precision, unused here).
(cd "$WORK" && "$DEV/searchclip" demo "$WORK/demo" --count 24 >/dev/null 2>&1) \
    || fail "searchclip demo failed in the full venv"
SCENES=$WORK/demo/scenes/images
mkdir -p "$WORK/base" "$WORK/new" "$WORK/new2"
for f in "$SCENES"/*; do
    case $(basename "$f") in
    scene-0002[0-1].*) mv "$f" "$WORK/new/" ;;
    scene-0002[2-3].*) mv "$f" "$WORK/new2/" ;;
    *) mv "$f" "$WORK/base/" ;;
    esac
done
must_pass "$DEV/searchclip" index "$WORK/base" --model "$ROOT/searchclip/models/shapes-clip" \
    --precision int8 --index "$WORK/index-int8" | tail -n 3
BASE=("$WORK"/base/*)
NEW=("$WORK"/new/*)
QUERY_IMAGE=$(realpath "${BASE[0]}")

# d, e and f for one interpreter: $1 is its python, $2 a name for its venv.
light_checks() {
    local python=$1 name=$2
    local venv=$WORK/venv-$name index=$WORK/index-$name
    local light=$venv/bin

    step "d. [$name] a fresh venv with the wheel's base dependencies only"
    "$python" -m venv "$venv"
    "$light/pip" install -q --disable-pip-version-check "$WHEEL" -c "$CONSTRAINTS"
    must_pass "$light/python" - "$venv" <<'EOF'
import importlib.util
import sys
from pathlib import Path

import searchclip

location = Path(searchclip.__file__).resolve()
if Path(sys.argv[1]).resolve() not in location.parents:
    sys.exit(f"searchclip imported from {location}, not from the light venv")
present = [m for m in ("torch", "transformers", "safetensors", "onnx")
           if importlib.util.find_spec(m)]
if present:
    sys.exit(f"the base install pulled in {', '.join(present)}")
print(f"Python {sys.version.split()[0]}, searchclip {searchclip.__version__} from the wheel;")
print("torch, transformers, safetensors, onnx: not installed")
EOF
    echo "$("$light/pip" list --format=freeze | wc -l) packages"

    step "e. [$name] search and grow the int8 index without torch"
    cp -r "$WORK/index-int8" "$index"
    local hits top image total=$((${#BASE[@]} + ${#NEW[@]}))
    hits=$(must_pass "$light/searchclip" query "a red circle" --index "$index" --paths)
    [[ -n $hits ]] || fail "the text query found nothing"
    echo "text query: $(wc -l <<<"$hits") hits, first $(head -n 1 <<<"$hits")"
    must_pass "$light/searchclip" info --index "$index"
    top=$(must_pass "$light/searchclip" query --image "$QUERY_IMAGE" --index "$index" \
        --paths -k 3)
    [[ $(head -n 1 <<<"$top") == "$QUERY_IMAGE" ]] \
        || fail "the image query's first hit is $(head -n 1 <<<"$top"), not $QUERY_IMAGE itself"
    echo "image query: first hit is the query image itself"
    must_pass "$light/searchclip" index "$WORK/new" --index "$index" | tail -n 3
    hits=$(must_pass "$light/searchclip" query "a blue square" --index "$index" --paths -k 100)
    [[ $(wc -l <<<"$hits") -eq $total ]] \
        || fail "the index holds $(wc -l <<<"$hits") images after adding, not $total"
    for image in "${NEW[@]}"; do
        image=$(realpath "$image")
        top=$(must_pass "$light/searchclip" query --image "$image" --index "$index" \
            --paths -k 1)
        [[ $top == "$image" ]] || fail "the added $image is not its own first hit ($top)"
    done
    echo "$total images after adding ${#NEW[@]}, each its own first hit"

    step "f. [$name] what needs torch says which extra to install"
    must_need_clip "$light/searchclip" index "$WORK/new2" --index "$WORK/index-new-$name"
    must_need_clip "$light/searchclip" index "$WORK/new2" --index "$WORK/index-new2-$name" \
        --model "$ROOT/searchclip/models/shapes-clip"
    must_need_clip "$light/python" -m searchclip.training --steps 1
}

light_checks python3 "python3"

printf '\nlight install check passed\n'
