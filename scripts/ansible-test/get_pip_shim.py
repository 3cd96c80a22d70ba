"""Stands in for pip's get-pip.py bootstrap that ansible-test downloads from
ci-files.testing.ansible.com, a host this machine cannot reach: it installs
the interpreter's bundled pip (ensurepip), then what ansible-test asked for
from PyPI. Used only by scripts/sanity.sh, under a private HOME."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
# In a child process: ensurepip turns pip's configuration (the CA bundle) off
# in the process that calls it.
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *args])
