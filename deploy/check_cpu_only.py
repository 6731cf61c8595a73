"""Fail when the environment holds a CUDA build of torch or any nvidia-* package.

Run by deploy/install.sh after installing: the CPU-only promise is checked, not assumed.
"""

import sys
from importlib.metadata import PackageNotFoundError, distributions, version


def main() -> int:
    nvidia = sorted({d.metadata["Name"] for d in distributions() if (d.metadata["Name"] or "").lower().startswith("nvidia-")})
    try:
        torch = version("torch")
    except PackageNotFoundError:
        print("torch is not installed", file=sys.stderr)
        return 1
    if nvidia or "+cu" in torch or "+rocm" in torch:
        print(f"not CPU-only: torch {torch}" + (f", {len(nvidia)} nvidia-* packages ({', '.join(nvidia[:4])}, ...)" if nvidia else "")
              + "; install torch from https://download.pytorch.org/whl/cpu (see README, 'Install')", file=sys.stderr)
        return 1
    print(f"CPU-only: torch {torch}, no nvidia-* packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
