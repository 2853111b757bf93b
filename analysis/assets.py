"""Pre-fill Solara's CDN proxy cache from the npm registry, for machines without access to
cdn.jsdelivr.net: the server reads the cache when `SOLARA_ASSETS_PROXY_CACHE_DIR` names it.

Finds every `<package>@<version>` the installed solara references and `npm pack`s it into
CACHE_DIR/<package>@<version>/; then serve with SOLARA_ASSETS_PROXY_CACHE_DIR=CACHE_DIR.
Regenerate when solara is upgraded (the versions change). About 10 s and 200 MB.
`scripts/test.sh` runs it before the tests; `gpumarket viz` uses the cache it fills.
usage: python -m analysis.assets CACHE_DIR
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import tarfile
import tempfile

#: Where `scripts/test.sh` and `gpumarket viz` keep the assets unless told otherwise.
DEFAULT_CACHE = pathlib.Path.home() / ".cache" / "gpumarket" / "solara-cdn"
SPEC = re.compile(r"(?:cdn\s*\}\}|getCdn\(\)\})/((?:@[\w.-]+/)?[\w.-]+@[\w.-]+?)/")
SKIP = ("@docsearch/", "algoliasearch", "hack-font")  # solara's own website only


def referenced_specs() -> list[str]:
    import solara
    import solara.server.settings as settings

    root, specs = pathlib.Path(solara.__file__).parent, set()
    for path in root.rglob("*"):
        if path.suffix in {".vue", ".j2", ".html", ".py", ".js"} and "website" not in path.parts:
            specs.update(SPEC.findall(path.read_text(errors="ignore")))
    specs.add(settings.assets.fontawesome_path.strip("/").split("/")[0])   # font-awesome
    return sorted(s for s in specs if "$" not in s and "{" not in s and not s.startswith(SKIP))


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    cache = pathlib.Path(sys.argv[1])
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for spec in referenced_specs():
            dest = cache / spec
            if dest.exists():
                continue
            tgz = subprocess.run(["npm", "pack", spec, "--silent"], cwd=tmp, check=True,
                                 capture_output=True, text=True, timeout=300).stdout.split()[-1]
            part = dest.with_name(dest.name + ".part")
            part.mkdir(parents=True, exist_ok=True)
            with tarfile.open(pathlib.Path(tmp) / tgz) as tf:
                for member in tf.getmembers():             # strip the leading "package/"
                    member.name = member.name.split("/", 1)[1] if "/" in member.name else ""
                    if member.name and not member.name.startswith(("/", "..")) and (
                            member.isfile() or member.isdir()):
                        tf.extract(member, part, filter="data")
            part.rename(dest)                              # complete packages only
            print("fetched", spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
