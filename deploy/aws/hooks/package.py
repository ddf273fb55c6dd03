"""Package the CodeDeploy pre-traffic hook as the zip Terraform deploys (hook_package_path).

    python3 deploy/aws/hooks/package.py     writes deploy/aws/hooks/dist/pre_traffic.zip

Run it before `terraform plan`/`apply` (the root configuration reads the zip). The archive is
reproducible: fixed timestamps and permissions, so the same source gives the same bytes and the
same source_code_hash, and Terraform updates the function only when the code changed.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ("pre_traffic.py",)
OUTPUT = HERE / "dist" / "pre_traffic.zip"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def package(output: Path = OUTPUT) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in SOURCES:
            entry = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, (HERE / name).read_bytes())
    return output


if __name__ == "__main__":
    print(f"wrote {package()}")
