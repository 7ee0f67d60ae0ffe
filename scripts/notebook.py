#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Start Debian's Jupyter Notebook on aiolab's notebooks: `make notebook`.

    /usr/bin/python3 scripts/notebook.py [--dir notebooks] [--port N]

The server listens on 127.0.0.1 only, on a free port (or --port), and
opens no browser; the first line printed is the URL to open, token
included:

    aiolab notebooks: http://127.0.0.1:PORT/?token=...

Kernels started from it import the aiolab package from this tree
(bindings/python goes on PYTHONPATH; `make` builds the extension modules
first) and use the binding AIOLAB_BINDING names (cffi by default).  Run
as root (as CI is), the server gets --allow-root.  Stop it with Ctrl-C
twice, or through the REST API (POST /api/shutdown).

--dir serves another directory, e.g. the student copy made by `make
student`: --dir build/student/notebooks.  The process replaces itself with
jupyter-notebook (same pid), so signals reach the server directly.
"""
import argparse
import glob
import os
import secrets
import shutil
import socket
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.join(ROOT, "bindings", "python")


def free_port(ip):
    """A port nobody listens on now (the server is told not to retry
    another, so a race shows as an error instead of a wrong URL)."""
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=os.path.join(ROOT, "notebooks"),
                    help="the directory to serve (default: notebooks/)")
    ap.add_argument("--ip", default="127.0.0.1",
                    help="address to listen on (default: 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0,
                    help="port (default: a free one)")
    args = ap.parse_args()

    server = shutil.which("jupyter-notebook")
    if server is None:
        print("notebook: jupyter-notebook not found; install Debian's "
              "package: apt-get install jupyter-notebook", file=sys.stderr)
        return 1
    if not glob.glob(os.path.join(PKG, "aiolab", "_aiolab_cffi*.so")):
        print("notebook: the aiolab extension modules are not built; run "
              "`make` first", file=sys.stderr)
        return 1
    nbdir = os.path.abspath(args.dir)
    if not os.path.isdir(nbdir):
        print(f"notebook: {args.dir}: no such directory", file=sys.stderr)
        return 1

    port = args.port or free_port(args.ip)
    token = secrets.token_hex(24)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [PKG] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                 if p])
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    argv = [server, "--no-browser", f"--ip={args.ip}", f"--port={port}",
            "--NotebookApp.port_retries=0",
            f"--NotebookApp.token={token}",
            f"--NotebookApp.notebook_dir={nbdir}",
            "--MappingKernelManager.default_kernel_name=python3"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    print(f"aiolab notebooks: http://{args.ip}:{port}/?token={token}",
          flush=True)
    print(f"(serving {nbdir} with the {env.get('AIOLAB_BINDING', 'cffi')} "
          f"binding; Ctrl-C twice stops the server)", flush=True)
    # Kernels start in the server's directory unless a notebook says
    # otherwise: the notebooks' own (they import lab.py from there).
    os.chdir(nbdir)
    os.execve(server, argv, env)


if __name__ == "__main__":
    sys.exit(main())
