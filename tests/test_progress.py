"""The progress bar as a terminal sees it: `cnndsl train` under a pseudo-terminal of a known width."""

import fcntl
import math
import os
import pty
import re
import struct
import subprocess
import sys
import termios

from conftest import ROOT, SMALL

WIDTH = 100
ESCAPE = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")  # CSI and OSC sequences


def _under_pty(args: list[str], columns: int) -> bytes:
    """Everything the command writes to a terminal `columns` wide (stdout and stderr both)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin, stdout and stderr are the terminal
        os.chdir(ROOT)
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        os.execvpe(sys.executable, [sys.executable, "-m", "cnndsl.cli", *args], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    screen = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, screen.decode(errors="replace")[-2000:]
    return screen


def test_the_bar_counts_batches_and_fits_the_terminal(tmp_path):
    spec = tmp_path / "small.cnn"
    spec.write_text(SMALL)
    screen = _under_pty(["train", str(spec), "--epochs", "2", "--out", str(tmp_path / "run")], WIDTH)
    text = ESCAPE.sub(b"", screen).decode()
    batches = math.ceil(1439 / 32)  # the digits' training images, the default batch size
    assert "1439 train" in text
    assert "epoch 2/2 " in text and f"{batches}/{batches}" in text
    counts = {int(m) for m in re.findall(rf"(\d+)/{batches}\b", text)}
    assert counts and max(counts) == batches  # batches, never images, against the batch total
    assert re.search(r"epoch 1/2 .*loss \d\.\d{4}\s+acc \d\.\d{4}.*batch/s", text)
    assert "====" not in text
    bars = [line for line in re.split(r"[\r\n]", text) if "batch/s" in line]
    assert bars and max(len(line) for line in bars) <= WIDTH, max(bars, key=len)
    # the log lines are as without a terminal, each from the first column of a line the bar left empty
    assert re.search(r"(^|[\r\n])epoch 1/2  loss \d\.\d{4}  acc \d\.\d{4}  val_loss \d\.\d{4}  val_acc \d\.\d{4}  "
                     r"\d+\.\ds\r?\n", text)


def test_no_bar_when_stderr_is_a_pipe(tmp_path):
    spec = tmp_path / "small.cnn"
    spec.write_text(SMALL)
    done = subprocess.run([sys.executable, "-m", "cnndsl.cli", "train", str(spec), "--epochs", "1", "--out",
                           str(tmp_path / "run")], capture_output=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert b"batch/s" not in done.stderr and b"/45" not in done.stderr and b"\x1b" not in done.stderr
    assert b"\r" not in done.stdout + done.stderr
    assert b"epoch 1/1  loss " in done.stdout


def test_rich_is_imported_only_for_a_bar():
    code = ("import sys; from cnndsl.training.progress import Progress; p = Progress(3, 'x'); p.update(1); p.close(); "
            "print('rich' in sys.modules, p.on)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout.split() == ["False", "False"] and done.stderr == ""
