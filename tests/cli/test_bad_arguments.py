"""Every path, number and table argument of every command, given badly.

One table: command × argument × {missing, wrong type, empty, truncated, out of range}.
Each case must end with exit code 2 and exactly one non-empty line on stderr,
``error: …``, naming the argument (or the file) and the problem, and must leave its
output (folder or file) absent, or byte for byte as it was. The inputs are small files
made here and copies of the session's cohort, cache and run; every case fails before
any heavy work (no training, no synthesis).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rgsynth.cli import app

runner = CliRunner()

MISS, TYPE, EMPTY, CUT, RANGE = "missing", "wrong type", "empty", "truncated", "out of range"
GE0, GE1 = "greater than or equal to 0", "greater than or equal to 1"  # typer's min= words


@dataclass(frozen=True)
class Case:
    """``args`` after the command, with ``{name}`` for an input of :class:`Inputs`;
    ``names``: the argument or file the error line must name; ``problem``: what it must
    say is wrong; ``output``: what must be absent or unchanged afterwards."""

    command: str
    argument: str
    kind: str
    args: str
    names: str
    problem: str
    output: str = "{out}"


def case(
    command: str,
    argument: str,
    kind: str,
    args: str,
    names: str,
    problem: str,
    output: str = "{out}",
) -> object:
    """A row of the table."""
    row = Case(command, argument, kind, args, names, problem, output)
    return pytest.param(row, id=f"{command} {argument}: {kind} ({args})")


CASES = [
    # synth-cohort OUT --subjects --seed --workers
    case("synth-cohort", "OUT", TYPE, "{file} --preset tiny", "{file}", "already exists", "{file}"),
    case("synth-cohort", "--subjects", TYPE, "{out} --subjects x", "--subjects", "valid integer"),
    case("synth-cohort", "--subjects", RANGE, "{out} --subjects -1", "n_subjects", ">= 1"),
    case("synth-cohort", "--workers", RANGE, "{out} --workers 0", "--workers", GE1),
    case("synth-cohort", "--holdout", TYPE, "{out} --holdout x", "--holdout", "valid integer"),
    case("synth-cohort", "--holdout", RANGE, "{out} --holdout -1", "n_holdout", ">= 0"),
    case("synth-cohort", "--seed", RANGE, "{out} --preset tiny --subjects 1 --workers 1 --seed -1",
         "--seed", GE0),
    # view COHORT --out --max-subjects --columns
    case("view", "COHORT", MISS, "{missing}", "{missing}", "no metadata.csv", "{png}"),
    case("view", "COHORT", TYPE, "{file} --out {png}", "{file}", "no metadata.csv", "{png}"),
    case("view", "COHORT", EMPTY, "{dir} --out {png}", "{dir}", "no metadata.csv", "{png}"),
    case("view", "--max-subjects", TYPE, "{cohort} --max-subjects x --out {png}", "--max-subjects",
         "valid integer", "{png}"),
    case("view", "--max-subjects", RANGE, "{cohort} --max-subjects 0 --out {png}", "--max-subjects",
         GE1, "{png}"),
    case("view", "--columns", RANGE, "{cohort} --columns 0 --out {png}", "--columns", GE1, "{png}",
         ),
    case("view", "--out", TYPE, "{cohort} --out {dir}", "{dir}", "folder", "{dir}",
         ),
    # prepare COHORT --out --genes --clinical and the settings
    case("prepare", "COHORT", MISS, "{missing} --out {out}", "{missing}", "does not exist"),
    case("prepare", "COHORT", TYPE, "{file} --out {out}", "{file}", "is a file"),
    case("prepare", "COHORT", EMPTY, "{dir} --out {out}", "{dir}", "no subjects found"),
    case("prepare", "--out", TYPE, "{cohort} --out {file}", "{file}", "not a folder", "{file}"),
    case("prepare", "--genes", MISS, "{cohort} --out {out} --genes {missing}", "--genes",
         "does not exist"),
    case("prepare", "--genes", TYPE, "{cohort} --out {out} --genes {dir}", "--genes",
         "is a directory"),
    case("prepare", "--genes", EMPTY, "{cohort} --out {out} --genes {empty}", "{empty}",
         "unreadable"),
    case("prepare", "--genes", CUT, "{cohort} --out {out} --genes {cut_gz}", "{cut_gz}",
         "truncated"),
    case("prepare", "--genes", CUT, "{cohort} --out {out} --genes {bad_gz}", "{bad_gz}", "damaged"),
    case("prepare", "--clinical", MISS, "{cohort} --out {out} --clinical {missing}", "--clinical",
         "does not exist"),
    case("prepare", "--clinical", TYPE, "{cohort} --out {out} --clinical {dir}", "--clinical",
         "is a directory"),
    case("prepare", "--clinical", EMPTY, "{cohort} --out {out} --clinical {empty}", "{empty}",
         "unreadable clinical table"),
    case("prepare", "--holdout", MISS, "{cohort} --out {out} --holdout {missing}", "--holdout",
         "does not exist"),
    case("prepare", "--holdout", TYPE, "{cohort} --out {out} --holdout {dir}", "--holdout",
         "is a directory"),
    case("prepare", "--holdout", EMPTY, "{cohort} --out {out} --holdout {empty}", "{empty}",
         "unreadable holdout list"),
    case("prepare", "--size", TYPE, "{cohort} --out {out} --size x", "--size", "valid integer"),
    case("prepare", "--size", RANGE, "{cohort} --out {out} --size 0", "size", "16, 32, 64"),
    case("prepare", "--size", RANGE, "{cohort} --out {out} --size 50", "size", "16, 32, 64, 128"),
    case("prepare", "--backgrounds", RANGE, "{cohort} --out {out} --backgrounds -1",
         "background_centres", ">= 0"),
    case("prepare", "--background-slices", RANGE, "{cohort} --out {out} --background-slices 0",
         "background_slices", ">= 1"),
    case("prepare", "--val-fraction", TYPE, "{cohort} --out {out} --val-fraction x",
         "--val-fraction", "valid number"),
    case("prepare", "--val-fraction", RANGE, "{cohort} --out {out} --val-fraction 1",
         "val_fraction", "[0, 1)"),
    case("prepare", "--val-fraction", RANGE, "{cohort} --out {out} --val-fraction -0.1",
         "val_fraction", "[0, 1)"),
    case("prepare", "--max-slice-mm", RANGE, "{cohort} --out {out} --max-slice-mm 0",
         "max_slice_mm", "positive"),
    case("prepare", "--seed", RANGE, "{cohort} --out {out} --seed -1", "--seed", GE0),
    case("prepare", "--workers", RANGE, "{cohort} --out {out} --workers 0", "--workers", GE1),
    # train CACHE RUN --steps --minutes and the settings
    case("train", "CACHE", MISS, "{missing} {out} --steps 1", "{missing}",
         "not a complete rgsynth cache"),
    case("train", "CACHE", TYPE, "{file} {out} --steps 1", "{file}",
         "not a complete rgsynth cache"),
    case("train", "CACHE", EMPTY, "{dir} {out} --steps 1", "{dir}", "not a complete rgsynth cache"),
    case("train", "CACHE", CUT, "{cut_cache} {out} --steps 1", "manifest.json", "damaged"),
    case("train", "CACHE", RANGE, "{cache_50} {out} --steps 1", "{cache_50}",
         "size must be one of"),
    case("train", "RUN", TYPE, "{cache} {file} --steps 1", "{file}", "not a folder", "{file}"),
    case("train", "--steps", TYPE, "{cache} {out} --steps x", "--steps", "valid integer"),
    case("train", "--steps", RANGE, "{cache} {out} --steps -3", "--steps", GE1),
    case("train", "--steps", RANGE, "{cache} {out} --steps 0", "--steps", GE1),
    case("train", "--minutes", TYPE, "{cache} {out} --minutes x", "--minutes", "valid number"),
    case("train", "--minutes", RANGE, "{cache} {out} --minutes -1", "--minutes", "greater than 0"),
    case("train", "--minutes", RANGE, "{cache} {out} --minutes 0", "--minutes", "greater than 0"),
    case("train", "--batch-size", RANGE, "{cache} {out} --steps 1 --batch-size 0", "batch_size",
         ">= 2"),
    case("train", "--lr", RANGE, "{cache} {out} --steps 1 --lr -1", "lr", "positive"),
    case("train", "--lr", RANGE, "{cache} {out} --steps 1 --lr 0", "lr", "positive"),
    case("train", "--gene-noise", RANGE, "{cache} {out} --steps 1 --gene-noise -1", "gene_noise",
         ">= 0"),
    case("train", "--gene-noise", RANGE, "{cache} {out} --steps 1 --model xu2019 --gene-noise 1",
         "'xu'", "takes no gene_noise"),
    case("train", "--d-translate", RANGE, "{cache} {out} --steps 1 --d-translate 0.5",
         "d_translate", "[0, 0.5)"),
    case("train", "--base-channels", RANGE, "{cache} {out} --steps 1 --base-channels 0",
         "base_channels 0", "positive"),
    case("train", "--max-channels", RANGE, "{cache} {out} --steps 1 --max-channels 0",
         "max_channels 0", "positive"),
    case("train", "--gene-hidden", RANGE, "{cache} {out} --steps 1 --gene-hidden 0",
         "gene_hidden 0", "positive"),
    case("train", "--seed", RANGE, "{cache} {out} --steps 1 --seed -1", "--seed", GE0),
    case("train", "--log-every", RANGE, "{cache} {out} --steps 1 --log-every 0", "log_every",
         ">= 1"),
    case("train", "--sample-every", RANGE, "{cache} {out} --steps 1 --sample-every 0",
         "sample_every", ">= 1"),
    case("train", "--checkpoint-every", RANGE, "{cache} {out} --steps 1 --checkpoint-every 0",
         "checkpoint_every", ">= 1"),
    case("train", "--device", TYPE, "{cache} {out} --steps 1 --device tpu", "--device",
         "auto, cpu or cuda"),
    # synthesize RUN OUT --cache --expression --gene-sets --ct and the numbers
    case("synthesize", "RUN", MISS, "{missing} {out}", "{missing}", "no checkpoint there"),
    case("synthesize", "RUN", EMPTY, "{dir} {out}", "{dir}", "no checkpoint there"),
    case("synthesize", "RUN", CUT, "{cut_run} {out}", "last.pt", "not a readable torch checkpoint"),
    case("synthesize", "OUT", TYPE, "{run} {file} --split train --backgrounds 1", "{file}",
         "not a folder", "{file}"),
    case("synthesize", "--cache", MISS, "{run} {out} --cache {missing}", "{missing}",
         "not a complete"),
    case("synthesize", "--unshrink-strength", RANGE, "{run} {out} --unshrink-strength 0",
         "--unshrink-strength", "greater than 0", "{out}"),
    case("synthesize", "--unshrink-strength", RANGE, "{run} {out} --unshrink-strength 2",
         "--unshrink-strength", "less than or equal to 1", "{out}"),
    case("synthesize", "--unshrink-strength", TYPE,
         "{run} {out} --plain-unseen --unshrink-strength 1", "--unshrink-strength", "read plain",
         "{out}"),
    case("synthesize", "--cache", EMPTY, "{run} {out} --cache {dir}", "{dir}", "not a complete"),
    case("synthesize", "--cache", CUT, "{run} {out} --cache {cut_cache}", "manifest.json",
         "damaged"),
    case("synthesize", "--expression", MISS, "{run} {out} --expression {missing}", "--expression",
         "does not exist"),
    case("synthesize", "--expression", TYPE, "{run} {out} --expression {dir}", "--expression",
         "is a directory"),
    case("synthesize", "--expression", EMPTY, "{run} {out} --expression {empty}", "{empty}",
         "unreadable"),
    case("synthesize", "--expression", CUT, "{run} {out} --expression {cut_gz}", "{cut_gz}",
         "truncated"),
    case("synthesize", "--gene-sets", MISS, "{run} {out} --set-program P1=1 --gene-sets {missing}",
         "--gene-sets", "does not exist"),
    case("synthesize", "--gene-sets", TYPE,
         "{run} {out} --set-program P1=1 --gene-sets {json_list}", "{json_list}",
         "unreadable gene-set file"),
    case("synthesize", "--gene-sets", EMPTY,
         "{run} {out} --set-program P1=1 --gene-sets {empty_gmt}", "{empty_gmt}", "no gene sets"),
    case("synthesize", "--gene-sets", CUT, "{run} {out} --set-program P1=1 --gene-sets {cut_json}",
         "{cut_json}", "unreadable gene-set file"),
    case("synthesize", "--ct", MISS, "{run} {out} --ct {missing} --random-locations 1", "{missing}",
         "no such file or folder"),
    case("synthesize", "--ct", EMPTY, "{run} {out} --ct {dir} --random-locations 1", "{dir}",
         "found no CT"),
    case("synthesize", "--ct", CUT, "{run} {out} --ct {bad_nii} --random-locations 1", "{bad_nii}",
         "unreadable image"),
    case("synthesize", "--at-mm", TYPE, "{run} {out} --at-mm 1,2", "--at-mm", "three numbers"),
    case("synthesize", "--set", TYPE, "{run} {out} --set EGFR=x", "EGFR=x", "expected NAME=Z"),
    case("synthesize", "--random-locations", RANGE, "{run} {out} --random-locations -1",
         "--random-locations", GE0),
    case("synthesize", "--backgrounds", RANGE, "{run} {out} --backgrounds -1", "--backgrounds",
         GE0),
    case("synthesize", "--per-background", RANGE, "{run} {out} --per-background 0",
         "--per-background", "at least 1"),
    case("synthesize", "--seed", RANGE, "{run} {out} --seed -1", "--seed", GE0),
    case("synthesize", "--margin-mm", RANGE, "{run} {out} --margin-mm -1", "margin", "≥ 0 mm"),
    case("synthesize", "--feather-mm", RANGE, "{run} {out} --feather-mm -1", "feather", "≥ 0 mm"),
    case("synthesize", "--batch-size", RANGE, "{run} {out} --batch-size 0", "--batch-size", GE1),
    case("synthesize", "--precision", TYPE, "{run} {out} --precision fp8", "--precision",
         "fp32 or bf16"),
    case("synthesize", "--device", TYPE, "{run} {out} --device tpu", "--device", "cpu or cuda"),
    # map RUN --cache --mcgan --gene-sets and the settings (RUN/maps is the output)
    case("map", "RUN", MISS, "{missing}", "{missing}", "no checkpoint there", "{missing}"),
    case("map", "RUN", EMPTY, "{dir}", "{dir}", "no checkpoint there", "{dir}"),
    case("map", "RUN", CUT, "{cut_run}", "last.pt", "not a readable torch checkpoint", "{cut_run}"),
    case("map", "--cache", MISS, "{run} --cache {missing}", "{missing}", "not a complete", "{run}"),
    case("map", "--mcgan", MISS, "{run} --mcgan {missing}", "{missing}", "no checkpoint there",
         "{run}"),
    case("map", "--gene-sets", MISS, "{run} --gene-sets {missing}", "--gene-sets", "does not exist",
         "{run}"),
    case("map", "--gene-sets", TYPE, "{run} --gene-sets {dir}", "--gene-sets", "is a directory",
         "{run}"),
    case("map", "--clusters", RANGE, "{run} --clusters 1", "n_clusters", ">= 2", "{run}"),
    case("map", "--metagene-min-r", RANGE, "{run} --metagene-min-r 2", "metagene_min_correlation",
         "[0, 1]", "{run}"),
    case("map", "--metagene-min-genes", RANGE, "{run} --metagene-min-genes 0", "metagene_min_genes",
         ">= 1", "{run}"),
    case("map", "--top-genes", RANGE, "{run} --top-genes -1", "top_genes", ">= 0", "{run}"),
    case("map", "--replicates", RANGE, "{run} --replicates 0", "replicates", ">= 1", "{run}"),
    case("map", "--shift", RANGE, "{run} --shift 0", "shift", "positive", "{run}"),
    case("map", "--backgrounds", RANGE, "{run} --backgrounds 0", "n_backgrounds", ">= 1", "{run}"),
    case("map", "--seed", RANGE, "{run} --seed -1", "--seed", GE0, "{run}"),
    case("map", "--map-weights", TYPE, "{run} --map-weights last", "map_weights",
         "both, snapshot, final", "{run}"),
    case("map", "--unshrink-strength", RANGE, "{run} --unshrink-strength 0",
         "--unshrink-strength", "greater than 0", "{run}"),
    case("map", "--unshrink-strength", RANGE, "{run} --unshrink-strength 2",
         "--unshrink-strength", "less than or equal to 1", "{run}"),
    # evaluate RUN --against --truth --cache and the settings (RUN is the output)
    case("evaluate", "RUN", MISS, "{missing}", "{missing}", "no checkpoint there", "{missing}"),
    case("evaluate", "--against", MISS, "{run} --against {missing}", "{missing}",
         "no checkpoint there", "{run}"),
    case("evaluate", "--cache", CUT, "{run} --cache {cut_cache}", "manifest.json", "damaged",
         "{run}"),
    case("evaluate", "--truth", MISS, "{run} --truth {missing}", "--truth", "does not exist",
         "{run}"),
    case("evaluate", "--truth", TYPE, "{run} --truth {dir}", "--truth", "is a directory", "{run}"),
    case("evaluate", "--truth", TYPE, "{run} --truth {not_json}", "{not_json}", "not JSON",
         "{run}"),
    case("evaluate", "--truth", TYPE, "{run} --truth {json_list}", "{json_list}",
         "not a twin's ground truth", "{run}"),
    case("evaluate", "--truth", TYPE, "{run} --truth {other_json}", "{other_json}",
         "not a twin's ground truth", "{run}"),
    case("evaluate", "--truth", EMPTY, "{run} --truth {empty}", "{empty}", "not JSON", "{run}"),
    case("evaluate", "--truth", CUT, "{run} --truth {cut_json}", "{cut_json}", "cut short",
         "{run}"),
    case("evaluate", "--per-donor", RANGE, "{run} --per-donor 0", "per_donor", ">= 1", "{run}"),
    case("evaluate", "--resamples", RANGE, "{run} --resamples 0", "resamples", ">= 1", "{run}"),
    case("evaluate", "--seed", RANGE, "{run} --seed -1", "--seed", GE0, "{run}"),
    case("evaluate", "--unshrink-strength", RANGE, "{run} --unshrink-strength 0",
         "--unshrink-strength", "greater than 0", "{run}"),
    case("evaluate", "--unshrink-strength", TYPE, "{run} --plain-unseen --unshrink-strength 1",
         "--unshrink-strength", "read plain", "{run}"),
    case("map", "--unshrink-strength", TYPE, "{run} --plain-unseen --unshrink-strength 1",
         "--unshrink-strength", "read plain", "{run}"),
    # report RUN --out
    case("report", "RUN", MISS, "{missing}", "{missing}", "missing; run `rgsynth evaluate",
         "{missing}"),
    case("report", "RUN", EMPTY, "{dir}", "{dir}", "missing; run `rgsynth evaluate", "{dir}"),
    case("report", "RUN", CUT, "{run_cut_scores}", "evaluation.json", "not valid JSON",
         "{run_cut_scores}"),
    case("report", "--out", TYPE, "{run} --out {file}", "{file}", "not a folder", "{file}"),
    case("report", "--out", TYPE, "{run} --out {full_dir}", "{full_dir}", "not a report",
         "{full_dir}"),
    # demo --out --minutes --steps --subjects --seed --workers
    case("demo", "--out", TYPE, "--out {file} --steps 1", "{file}", "not a folder", "{file}"),
    case("demo", "--minutes", TYPE, "--out {out} --minutes x", "--minutes", "valid number"),
    case("demo", "--minutes", RANGE, "--out {out} --minutes 0", "--minutes", "greater than 0"),
    case("demo", "--minutes", RANGE, "--out {out} --minutes -1", "--minutes", "greater than 0"),
    case("demo", "--steps", RANGE, "--out {out} --steps 0", "--steps", GE1),
    case("demo", "--subjects", RANGE, "--out {out} --subjects 0", "n_subjects", ">= 1"),
    case("demo", "--seed", RANGE, "--out {out} --seed -1", "--seed", GE0),
    case("demo", "--workers", RANGE, "--out {out} --workers 0", "--workers", GE1),
]  # fmt: skip


class Inputs:
    """The inputs a case names, each made on first use: small bad files in ``tmp_path``,
    the session's cohort and cache as they are (only read), and private copies of the
    cache and run for what is damaged or written into."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.request, self.tmp = request, tmp_path
        self.made: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self.made:
            self.made[name] = getattr(self, f"_{name}")()
        return self.made[name]

    def fill(self, text: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: str(self[m.group(1)]), text)

    def _fixture(self, name: str) -> Path:
        return self.request.getfixturevalue(name)

    def _write(self, name: str, data: bytes | str) -> Path:
        path = self.tmp / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path

    # paths that are not there, or not what is expected
    def _out(self) -> Path:
        return self.tmp / "out"

    def _png(self) -> Path:
        return self.tmp / "montage.png"

    def _missing(self) -> Path:
        return self.tmp / "nowhere"

    def _file(self) -> Path:
        return self._write("a-file.txt", "mine, not a folder\n")

    def _dir(self) -> Path:
        (self.tmp / "a-folder").mkdir()
        return self.tmp / "a-folder"

    def _full_dir(self) -> Path:
        folder = self.tmp / "my-documents"
        folder.mkdir()
        (folder / "thesis.txt").write_text("precious\n")
        return folder

    # small bad tables
    def _empty(self) -> Path:
        return self._write("empty.txt", b"")

    def _empty_gmt(self) -> Path:
        return self._write("empty.gmt", b"")

    def _cut_gz(self) -> Path:
        rows = "".join(f"TG{n}\t{n}\t{n + 1}\n" for n in range(2000))
        data = gzip.compress(f"\tR01-001\tR01-002\n{rows}".encode())
        return self._write("cut.txt.gz", data[: len(data) // 2])

    def _bad_gz(self) -> Path:
        return self._write("damaged.txt.gz", gzip.compress(b"gene\tR01-001\n")[:10] + b"x" * 200)

    def _bad_nii(self) -> Path:
        return self._write("cut.nii.gz", gzip.compress(b"\x00" * 4096)[:40])

    def _not_json(self) -> Path:
        return self._write("not-json.json", "gene programs, as prose\n")

    def _json_list(self) -> Path:
        return self._write("list.json", "[1, 2, 3]\n")

    def _other_json(self) -> Path:
        return self._write("other.json", json.dumps({"format": "something-else", "effects": {}}))

    def _cut_json(self) -> Path:
        text = (self._fixture("small_cohort") / "ground_truth.json").read_text()
        return self._write("ground_truth.json", text[: len(text) // 2])

    # the session's cohort, cache and run, and damaged copies
    def _cohort(self) -> Path:
        return self._fixture("small_cohort")

    def _cache(self) -> Path:
        return self._fixture("train_cache")

    def _cache_copy(self, name: str) -> Path:
        return Path(shutil.copytree(self._fixture("train_cache"), self.tmp / name))

    def _cut_cache(self) -> Path:
        manifest = self._cache_copy("cut-cache") / "manifest.json"
        text = manifest.read_text()
        manifest.write_text(text[: len(text) // 2])
        return manifest.parent

    def _cache_50(self) -> Path:
        """A cache prepared before prepare refused sizes the networks cannot take."""
        manifest = self._cache_copy("cache-50") / "manifest.json"
        values = json.loads(manifest.read_text())
        values["settings"]["size"] = 50
        manifest.write_text(json.dumps(values))
        return manifest.parent

    def _run(self) -> Path:
        return self._fixture("run_copy")

    def _cut_run(self) -> Path:
        run = Path(shutil.copytree(self._fixture("trained_run"), self.tmp / "cut-run"))
        checkpoint = run / "checkpoints" / "last.pt"
        data = checkpoint.read_bytes()
        checkpoint.write_bytes(data[: len(data) // 2])
        return run

    def _run_cut_scores(self) -> Path:
        run = self._fixture("run_copy")
        (run / "evaluation.json").write_text('{"models": {"xu": ')
        return run


def snapshot(path: Path) -> object:
    """What is at ``path``: None, a file's digest, or every entry of a folder with its
    digest (a byte-identical listing)."""
    if not path.exists():
        return None
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return sorted(
        (
            str(p.relative_to(path)),
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "/",
        )
        for p in path.rglob("*")
    )


@pytest.mark.parametrize("row", CASES)
def test_a_bad_argument_is_one_line_and_writes_nothing(
    row: Case, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    inputs = Inputs(request, tmp_path)
    args = [inputs.fill(token) for token in shlex.split(row.args)]
    output = Path(inputs.fill(row.output))
    before = snapshot(output)

    result = runner.invoke(app, [row.command, *args])

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    assert inputs.fill(row.names) in line, (row.names, line)
    assert row.problem in line, (row.problem, line)
    assert snapshot(output) == before, f"{output} changed"


def test_the_table_covers_every_command() -> None:
    """A command added to the app without rows here fails this test."""
    from typer.main import get_command

    commands = set(get_command(app).commands)
    assert commands == {row.values[0].command for row in CASES}
