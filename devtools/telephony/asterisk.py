"""Run Asterisk from the sid chroot with a private config tree, originate calls, read results."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

HARNESS = Path(__file__).with_name("asterisk_chroot.sh")
TELEPHONY = Path(__file__).resolve().parents[2] / "telephony"
MODULE_DIR = "/usr/lib/x86_64-linux-gnu/asterisk/modules"

# Everything the examples and tests use; autoload=no keeps boot well under a second.
MODULES = (
    "res_timing_timerfd pbx_config pbx_spool res_clioriginate res_speech res_agi app_playback "
    "app_record app_mixmonitor app_verbose app_stack app_senddtmf func_channel func_db "
    "func_strings func_logic func_uuid codec_ulaw codec_gsm codec_resample format_pcm "
    "format_wav format_sln format_gsm res_audiosocket app_audiosocket chan_audiosocket"
).split()


class AsteriskError(RuntimeError):
    """Asterisk did not start, answer or finish a call as expected."""


def prepare_chroot(build: bool = True) -> Path:
    """Return the cached chroot (VOXLINE_ASTERISK_ROOT wins), building it when asked."""
    if os.environ.get("VOXLINE_ASTERISK_ROOT"):
        return Path(os.environ["VOXLINE_ASTERISK_ROOT"])
    args = ["bash", str(HARNESS)] + ([] if build else ["--path"])
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=900)
    return Path(out.stdout.strip().splitlines()[-1])


class Asterisk:
    """One foreground Asterisk whose files live at identical paths on the host and in the chroot."""

    def __init__(self, root: Path, extra_conf: dict[str, str] | None = None) -> None:
        self.root = root
        # The real folder is inside the chroot; a host symlink at the same path points to it.
        inner = Path(tempfile.mkdtemp(prefix="voxline-ast-", dir=root / "tmp"))
        self.run_dir = Path("/tmp") / inner.name
        self.run_dir.symlink_to(inner)
        self.conf = self.run_dir / "etc" / "asterisk.conf"
        self.extra_conf = extra_conf or {}
        self.process: subprocess.Popen[bytes] | None = None

    def path(self, *parts: str) -> Path:
        """A path under the private tree, valid on the host and inside the chroot."""
        return self.run_dir.joinpath(*parts)

    def _write_config(self) -> None:
        """Write asterisk.conf, modules.conf, logger.conf, extensions.conf and the snippets."""
        r = self.run_dir
        for sub in (
            "etc",
            "agi-bin",
            "varlib",
            "spool/outgoing",
            "spool/tmp",
            "run",
            "log",
            "rec",
            "prompts",
            "astcache",
        ):
            (r / sub).mkdir(parents=True, exist_ok=True)
        (r / "etc/asterisk.conf").write_text(
            "[directories]\n"
            f"astcachedir => {r}/astcache\nastetcdir => {r}/etc\nastmoddir => {MODULE_DIR}\n"
            f"astvarlibdir => {r}/varlib\nastdbdir => {r}/varlib\nastkeydir => {r}/varlib\n"
            "astdatadir => /usr/share/asterisk\n"
            f"astagidir => {r}/agi-bin\nastspooldir => {r}/spool\nastrundir => {r}/run\n"
            f"astlogdir => {r}/log\nastsbindir => /usr/sbin\n"
            "[options]\nverbose = 0\ndebug = 0\n"
        )
        (r / "etc/modules.conf").write_text(
            "[modules]\nautoload = no\n" + "".join(f"load => {m}.so\n" for m in MODULES)
        )
        (r / "etc/logger.conf").write_text(
            "[general]\n[logfiles]\nmessages.log => notice,warning,error,verbose(3)\n"
        )
        includes = "".join(f'#include "{name}"\n' for name in self.extra_conf)
        (r / "etc/extensions.conf").write_text(
            "[general]\nstatic = yes\nwriteprotect = yes\n[globals]\n"
            f'#include "voxline.conf"\n{includes}'
        )
        shutil.copy(TELEPHONY / "dialplan" / "voxline.conf", r / "etc" / "voxline.conf")
        for name, text in self.extra_conf.items():
            (r / "etc" / name).write_text(text)
        # Install the AGI script the way an Asterisk host would: the script plus voxagi/.
        shutil.copy(TELEPHONY / "voxline.agi", r / "agi-bin" / "voxline.agi")
        shutil.copytree(
            TELEPHONY / "voxagi",
            r / "agi-bin" / "voxagi",
            ignore=shutil.ignore_patterns("__pycache__"),
            dirs_exist_ok=True,
        )

    def asterisk_cmd(self, *args: str) -> list[str]:
        """The command line of the chroot's asterisk binary with this config."""
        return ["chroot", str(self.root), "/usr/sbin/asterisk", "-C", str(self.conf), *args]

    def start(self, timeout: float = 15.0) -> None:
        """Boot Asterisk in the foreground and wait until it is fully booted."""
        self._write_config()
        log = open(self.path("log", "console.log"), "wb")
        self.process = subprocess.Popen(
            self.asterisk_cmd("-f", "-n"),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AsteriskError(f"asterisk exited at boot: {self.log_tail()}")
            if self.path("run", "asterisk.ctl").exists():
                done = subprocess.run(
                    self.asterisk_cmd("-rx", "core waitfullybooted"),
                    capture_output=True,
                    timeout=timeout,
                )
                if done.returncode == 0:
                    return
            time.sleep(0.05)
        raise AsteriskError(f"asterisk did not boot in {timeout} s: {self.log_tail()}")

    def cli(self, command: str, timeout: float = 10.0) -> str:
        """Run one CLI command on the running Asterisk and return its output."""
        done = subprocess.run(
            self.asterisk_cmd("-rx", command), capture_output=True, text=True, timeout=timeout
        )
        return done.stdout

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the console and message logs, for failure messages."""
        out = []
        for name in ("console.log", "messages.log"):
            try:
                text = self.path("log", name).read_text(errors="replace")
            except OSError:
                continue
            out.append(f"--- {name}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(out)

    def originate(
        self, channel: str, context: str, exten: str, variables: dict[str, str], wait_time: int = 30
    ) -> None:
        """Start a call with a call file (the way scripts do it without AMI)."""
        lines = [
            f"Channel: {channel}",
            f"Context: {context}",
            f"Extension: {exten}",
            "Priority: 1",
            "MaxRetries: 0",
            f"WaitTime: {wait_time}",
        ]
        lines += [f"Setvar: {k}={v}" for k, v in variables.items()]
        name = f"{uuid.uuid4().hex}.call"
        temp = self.path("spool", "tmp", name)
        temp.write_text("\n".join(lines) + "\n")
        os.replace(temp, self.path("spool", "outgoing", name))

    def db_get(self, family: str, key: str) -> str | None:
        """Read one AstDB value, or None when absent."""
        out = self.cli(f"database get {family} {key}")
        for line in out.splitlines():
            if line.startswith("Value: "):
                return line[len("Value: ") :]
        return None

    def db_show(self, family: str) -> dict[str, str]:
        """All AstDB keys of a family (without the family prefix)."""
        values = {}
        for line in self.cli(f"database show {family}").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.startswith(f"/{family}/"):
                values[key.strip()[len(family) + 2 :]] = value.strip()
        return values

    def wait_db(self, family: str, key: str, timeout: float) -> str:
        """Wait until an AstDB key exists and return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.db_get(family, key)
            if value is not None:
                return value
            time.sleep(0.1)
        raise AsteriskError(f"no {family}/{key} after {timeout} s\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop Asterisk (CLI, then signals) and remove the private tree."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.cli("core stop now", timeout=5)
                self.process.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        inner = self.run_dir.resolve()
        self.run_dir.unlink(missing_ok=True)
        shutil.rmtree(inner, ignore_errors=True)
