#!/usr/bin/env python3
"""Regenerate the OpenCC dictionaries embedded in csft_core::opencc.

Usage:
    python3 rust/opencc/dict/regenerate.py /path/to/opencc-1.4.2 [--check-installed]

Copies OpenCC's built-in configs (data/config/*.json, into config/) and raw text dictionaries
(data/dictionary/*.txt) from an unpacked OpenCC 1.4.2 sdist and builds the
generated ones exactly as OpenCC's data/CMakeLists.txt does, by running OpenCC's own scripts
from the sdist's data/scripts/:

* TSCharactersExt.txt        <- extract_tofu_risk.py TSCharacters.txt
* TWVariantsRev.txt          <- reverse.py TWVariants.txt
* HKVariantsRev.txt          <- reverse.py HKVariants.txt
* JPShinjitaiCharactersRev.txt <- reverse.py JPShinjitaiCharacters.txt
* STPhrases_GeneratedFromRegionalPhrases.txt <- generate_st_phrases_from_regional_phrases.py
  --input HKPhrases.txt --input TWPhrases.txt (t2s conversion of the keys). Upstream shells out
  to the freshly built `opencc` binary with t2s.json; here the same function is fed by the
  installed `opencc` Python package (1.4.2), whose t2s uses the same dictionaries.

With --check-installed, every dictionary is also compared (key -> values) with the compiled
.ocd2 dictionary shipped in the installed `opencc` Python package, dumped with its bundled
`opencc_dict` tool; any difference is an error.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

RAW = [
    "CJK_Compatibility_Ideographs",
    "STCharacters",
    "STPhrases",
    "TSCharacters",
    "TSPhrases",
    "TWPhrases",
    "TWPhrasesRev",
    "TWVariantsPhrases",
    "TWVariants",
    "TWVariantsRevPhrases",
    "HKVariantsPhrases",
    "HKVariants",
    "HKVariantsRevPhrases",
    "HKPhrases",
    "HKPhrasesRev",
    "JPShinjitaiCharacters",
    "JPShinjitaiPhrases",
]
REVERSED = {
    "TWVariantsRev": "TWVariants",
    "HKVariantsRev": "HKVariants",
    "JPShinjitaiCharactersRev": "JPShinjitaiCharacters",
}
GENERATED = ["TSCharactersExt", "STPhrases_GeneratedFromRegionalPhrases", *REVERSED]


def run_script(scripts, name, *args):
    subprocess.run([sys.executable, str(scripts / name), *map(str, args)], check=True)


def generate_st_phrases(scripts, dict_dir, out):
    import opencc

    assert opencc.__version__ == "1.4.2", opencc.__version__
    sys.path.insert(0, str(scripts))
    import generate_st_phrases_from_regional_phrases as gen

    t2s = opencc.OpenCC("t2s")

    def convert_keys(_opencc, _config, _dict_dir, keys):
        # Same result as one `opencc -c t2s.json` run over the newline-joined keys: t2s has no
        # segmentation and no dictionary key contains a newline.
        return [t2s.convert(k) for k in keys]

    gen.convert_keys = convert_keys
    argv = sys.argv
    sys.argv = [
        "generate_st_phrases_from_regional_phrases.py",
        *("--input", str(dict_dir / "HKPhrases.txt")),
        *("--input", str(dict_dir / "TWPhrases.txt")),
        *("--output", str(out)),
        *("--opencc", "python-opencc"),
        *("--config", "t2s.json"),
        *("--dict-dir", str(dict_dir)),
    ]
    try:
        if gen.main() != 0:
            raise SystemExit("generate_st_phrases_from_regional_phrases failed")
    finally:
        sys.argv = argv


def parse_lexicon(path):
    """key -> values, following OpenCC's Lexicon::ParseLexiconFromFile."""
    lex = {}
    data = Path(path).read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for line in data.decode("utf-8").split("\n"):
        line = line.rstrip("\r")
        if not line or line.startswith("#"):
            continue
        key, values = line.split("\t", 1)
        assert key not in lex, f"{path}: duplicate key {key}"
        lex[key] = values.split(" ")
    return lex


def check_installed(names):
    import opencc

    base = Path(opencc.__file__).parent / "clib"
    tool = base / "bin" / "opencc_dict"
    share = base / "share" / "opencc"
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            dump = Path(tmp) / f"{name}.txt"
            ocd2 = share / f"{name}.ocd2"
            subprocess.run([tool, "-i", ocd2, "-o", dump, "-f", "ocd2", "-t", "text"], check=True)
            ours = parse_lexicon(HERE / f"{name}.txt")
            theirs = parse_lexicon(dump)
            if ours != theirs:
                bad += 1
                diff = [k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k)]
                print(f"MISMATCH {name}: {len(diff)} keys differ, e.g. {sorted(diff)[:5]}")
            else:
                print(f"ok {name}: {len(ours)} entries")
    if bad:
        raise SystemExit(f"{bad} dictionaries differ from the installed opencc package")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sdist", help="unpacked OpenCC 1.4.2 source tree")
    ap.add_argument("--check-installed", action="store_true")
    args = ap.parse_args()

    src = Path(args.sdist) / "data" / "dictionary"
    scripts = Path(args.sdist) / "data" / "scripts"
    for name in RAW:
        shutil.copyfile(src / f"{name}.txt", HERE / f"{name}.txt")
    config_dir = HERE / "config"
    config_dir.mkdir(exist_ok=True)
    for config in (Path(args.sdist) / "data" / "config").glob("*.json"):
        if config.name != "opencc_config.schema.json":
            shutil.copyfile(config, config_dir / config.name)
    run_script(
        scripts, "extract_tofu_risk.py", src / "TSCharacters.txt", HERE / "TSCharactersExt.txt"
    )
    for out, inp in REVERSED.items():
        run_script(scripts, "reverse.py", src / f"{inp}.txt", HERE / f"{out}.txt")
    generate_st_phrases(scripts, src, HERE / "STPhrases_GeneratedFromRegionalPhrases.txt")
    if args.check_installed:
        check_installed(RAW + GENERATED)


if __name__ == "__main__":
    main()
