"""The ImageJ bridge without Java: options, tables, the installer's macros, start-up
planning (Fiji offline), the training-pair backend and ``golddigger imagej --call``."""

from __future__ import annotations

import logging
import os
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from roifile import ROI_TYPE, ImagejRoi

from golddigger.cli.main import main
from golddigger.errors import AnnotationError, GoldDiggerError
from golddigger.imagej import backend, connect, install, tables
from golddigger.imagej.options import (
    ANALYZE_FIELDS,
    COMMANDS,
    DETECT_FIELDS,
    FOLDER_FIELDS,
    TRAINING_FIELDS,
    Field,
    format_options,
    parse_classes,
    parse_options,
    recorded_line,
)
from golddigger.io.annotations import read_particles
from golddigger.io.images import read_image
from golddigger.io.rois import CLASS_COLORS, write_roiset
from golddigger.particles import ParticleTable

PX = 0.5587


# ---------------------------------------------------------------------------- options
def test_empty_options_give_the_defaults():
    v = parse_options("", DETECT_FIELDS)
    assert v == {"model": "default", "threshold": 0.0, "classes": "all", "shape": "ovals",
                 "region": "selection", "pixel_size": 0.0, "whole_stack": False,
                 "sizing": "model", "tta": "1", "precision": "auto", "rerun": "replace",
                 "add_to": "roi_manager", "results": False}


def test_options_in_imagej_syntax():
    v = parse_options("threshold=0.4 classes=[6, 12] shape=Points whole_stack "
                      "model=[/my models/m 1]", DETECT_FIELDS)
    assert v["threshold"] == 0.4
    assert v["classes"] == "6, 12" and parse_classes(v["classes"]) == [6.0, 12.0]
    assert v["shape"] == "points"  # choices match case-insensitively, as ImageJ's
    assert v["whole_stack"] is True
    assert v["model"] == "/my models/m 1"


def test_bad_option_values_are_refused():
    with pytest.raises(GoldDiggerError, match="not a number"):
        parse_options("threshold=abc", DETECT_FIELDS)
    with pytest.raises(GoldDiggerError, match="not one of"):
        parse_options("shape=squares", DETECT_FIELDS)
    with pytest.raises(GoldDiggerError, match="classes"):
        parse_classes("six")


def test_unknown_option_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING):
        parse_options("treshold=0.3", DETECT_FIELDS, "Detect Gold")
    assert "treshold" in caplog.text


@pytest.mark.parametrize("fields", [DETECT_FIELDS, FOLDER_FIELDS, TRAINING_FIELDS,
                                    ANALYZE_FIELDS])
def test_format_then_parse_round_trips(fields):
    values = parse_options("", fields)
    for f in fields:
        if f.kind == "checkbox":
            values[f.key] = True
        elif f.kind == "number":
            values[f.key] = 0.25
        elif f.kind in ("string", "directory"):
            values[f.key] = "/a path/with spaces"
        else:
            values[f.key] = f.choices[-1]
    assert parse_options(format_options(values, fields), fields) == values


def test_recorded_line_is_a_run_call_that_reads_back():
    """The recorder's line: run("command", "options"); its string literals (C-like escapes
    in the macro language and JavaScript) give back the command and the options."""
    import ast

    opts = 'folder=[C:\\EM data\\"run 2"] threshold=0.4'
    line = recorded_line("Detect Gold in Folder", opts)
    assert line.startswith('run("Detect Gold in Folder", "') and line.endswith('");\n')
    args = ast.literal_eval("(" + line[len("run("):-len(");\n")] + ")")
    assert args == ("Detect Gold in Folder", opts)
    assert recorded_line("Detect Gold", "", script=True) == 'IJ.run("Detect Gold", "");\n'
    assert "\n" not in recorded_line("A", "x\ny")[:-1]


def test_labels_start_with_their_macro_key():
    with pytest.raises(ValueError, match="must start with its key"):
        Field("pixel_size", "Pixel size", "number", 0.0)
    for _, fields in COMMANDS.values():
        for f in fields:
            assert f.label.split(" ")[0].lower() == f.key
            assert re.fullmatch(r"[a-z_]+", f.key)


def test_the_documentation_lists_every_option():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "imagej.md").read_text()
    for command, (_, fields) in COMMANDS.items():
        assert f"### {command}" in doc
        section = doc.split(f"### {command}", 1)[1].split("\n### ", 1)[0]
        for f in fields:
            assert f"`{f.key}`" in section, (command, f.key)


def test_analysis_default_simulations_match_the_analysis_package():
    from golddigger.analysis.randomness import DEFAULT_N_SIM

    assert parse_options("", ANALYZE_FIELDS)["simulations"] == DEFAULT_N_SIM


# ---------------------------------------------------------------------------- tables
def _table():
    return ParticleTable([10.0, 20.0, 30.0, 40.0], [5.0, 6.0, 7.0, 8.0], [6, 12, 6, 18],
                         [0.9, 0.8, 0.7, 0.6], [0, 0, 1, 1])


def test_results_rows_in_calibrated_units_and_pixels():
    rows = tables.results_rows(_table(), PX, "µm", 1000.0, region="membrane")
    assert [r["Name"] for r in rows] == ["gold-6nm-0001", "gold-12nm-0002", "gold-6nm-0003",
                                         "gold-18nm-0004"]
    assert rows[1]["X"] == pytest.approx(20 * PX / 1000) and rows[1]["X_px"] == 20.0
    assert rows[2]["Slice"] == 2 and rows[3]["Class"] == 18.0
    assert {r["Region"] for r in rows} == {"membrane"}
    assert list(rows[0]) == list(tables.RESULTS_COLUMNS)


def test_summary_rows_per_slice_with_density():
    rows = tables.summary_rows(_table(), (6, 12, 18), PX, area_px=1e6, slices=[0, 1],
                               image="a.tif", region="image")
    area = 1e6 * (PX / 1000) ** 2
    assert [r["slice"] for r in rows] == [1, 2]
    assert rows[0]["total"] == 2 and rows[0]["n_6nm"] == 1 and rows[0]["n_18nm"] == 0
    assert rows[1]["n_18nm"] == 1
    assert rows[0]["area_um2"] == pytest.approx(area, rel=1e-5)
    assert rows[0]["density_per_um2"] == pytest.approx(2 / area, rel=1e-3)


def test_roi_names_are_those_write_roiset_gives(tmp_path):
    t = ParticleTable(np.arange(12.0), np.arange(12.0), [6.0] * 11 + [12.0])
    write_roiset(tmp_path / "r.zip", t, PX)
    with zipfile.ZipFile(tmp_path / "r.zip") as zf:
        names = [ImagejRoi.frombytes(zf.read(n)).name for n in zf.namelist()]
    assert names == tables.roi_names(t)


def test_plain_csv_has_no_commas_inside_cells(tmp_path):
    text = tables.rows_to_csv([{"Image": 'a, "b"', "N": 1}], plain=True)
    assert text.splitlines()[1] == "a; 'b',1"


# ---------------------------------------------------------------------------- installer
def test_macro_strings_escape_and_stay_ascii():
    assert install.macro_string('a"b\\c') == '"a\\"b\\\\c"'
    assert install.macro_string("/home/zoë/x") == '"/home/zo" + fromCharCode(235) + "/x"'
    assert install.macro_string("😀") == "fromCharCode(55357, 56832)"
    assert install.macro_string("") == '""'


def test_rendered_command_calls_the_program_without_a_shell():
    src = install.scripts_dir()
    common = (src / "golddigger-common.ijm").read_text()
    text = install.render_command("Detect Gold", (src / "Detect_Gold.ijm").read_text(), common,
                                  ["/opt/my env/bin/golddigger"])
    assert "//@GENERATED@" not in text
    assert 'exec("/opt/my env/bin/golddigger", "imagej", "--call=" + what' in text
    assert "sh -c" not in text and "bash" not in text
    # the dialog is built from the option fields: every label, every key
    for f in DETECT_FIELDS:
        assert install.macro_string(f.label) in text
        assert any(f"{q}{f.key}{end}" in text for q, end in (('"', '='), ('"', ' "'),
                                                             ('gdOption("', '"')))
    # class colours of golddigger.io.rois
    for colour in CLASS_COLORS.values():
        assert colour in text


def test_install_and_uninstall(tmp_path):
    target = tmp_path / "Fiji.app"
    (target / "plugins").mkdir(parents=True)
    old = target / "plugins" / "Gold Digger" / "Detect_Gold.ijm"  # an earlier install's
    old.parent.mkdir()
    old.write_text("// listed by ImageJ itself")
    done = install.install(target, argv=[sys.executable, "-m", "golddigger.cli.main"])
    names = sorted(p.name for p in done.files)
    assert names == ["Gold_Digger.jar", "about-gold-digger.txt", "add-to-training-set.txt",
                     "analyze-gold-distribution.txt", "detect-gold-in-folder.txt",
                     "detect-gold.txt"]
    assert not old.exists()  # it would put a second Detect Gold in the menu
    assert done.folder == target / "plugins" / "Gold Digger"
    assert done.commands[0] == "Detect Gold" and done.commands[-1] == "About Gold Digger"
    for p in done.files:
        if p.suffix == ".txt":
            p.read_bytes().decode("ascii")  # ImageJ reads macros in the platform charset
    # the menu's order, each item run by ImageJ's macro runner from the installed file
    with zipfile.ZipFile(done.folder / "Gold_Digger.jar") as zf:
        config = zf.read("plugins.config").decode("ascii").splitlines()
    items = [ln for ln in config if ln and not ln.startswith("#")]
    assert items[0] == ('Plugins>Gold Digger, "Detect Gold", '
                        'ij.plugin.Macro_Runner("Gold Digger/detect-gold.txt")')
    assert items[2] == 'Plugins>Gold Digger, "-"' and '"About Gold Digger"' in items[-1]
    assert install.uninstall(target) and not done.folder.exists()


def test_install_refuses_a_folder_that_is_not_imagej(tmp_path):
    with pytest.raises(GoldDiggerError, match="not a folder"):
        install.install(tmp_path / "missing")
    (tmp_path / "docs").mkdir()
    with pytest.raises(GoldDiggerError, match="does not look like"):
        install.install(tmp_path / "docs")


def test_install_fiji_command_line(tmp_path, capsys):
    (tmp_path / "ij" / "plugins").mkdir(parents=True)
    assert main(["install-fiji", str(tmp_path / "ij")]) == 0
    out = capsys.readouterr().out
    assert "Plugins > Gold Digger > Detect Gold" in out
    assert (tmp_path / "ij/plugins/Gold Digger/detect-gold.txt").is_file()
    assert "Plugins > Gold Digger > About Gold Digger" in out


def test_golddigger_argv_is_absolute():
    argv = install.golddigger_argv()
    assert Path(argv[0]).is_absolute() and Path(argv[0]).exists()


# ---------------------------------------------------------------------------- connect
@pytest.mark.parametrize("text, option", [("4g", "-Xmx4096m"), ("4096", "-Xmx4096m"),
                                          ("512m", "-Xmx512m"), ("1.5g", "-Xmx1536m"),
                                          ("50%", "-XX:MaxRAMPercentage=50"), (None, None)])
def test_heap_option(text, option):
    assert connect.heap_option(text) == option


@pytest.mark.parametrize("text", ["lots", "10k", "0%", "99%"])
def test_bad_heap_is_refused(text):
    with pytest.raises(connect.ImageJError):
        connect.heap_option(text)


def test_jvm_options():
    assert connect.jvm_options("2g", True, "/x y") == ["-Xmx2048m", "-Djava.awt.headless=true",
                                                       "-Dplugins.dir=/x y"]


def test_ij_jar_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("IJ_JAR", str(tmp_path / "nope.jar"))
    with pytest.raises(connect.ImageJError, match="IJ_JAR"):
        connect.find_ij_jar()
    jar = tmp_path / "ij.jar"
    jar.write_bytes(b"PK")
    monkeypatch.setenv("IJ_JAR", str(jar))
    assert connect.find_ij_jar() == jar
    assert connect.find_ij_jar(jar) == jar


def _fake_fiji(root: Path, with_java: bool) -> Path:
    fiji = root / "Fiji.app"
    (fiji / "jars").mkdir(parents=True)
    (fiji / "plugins").mkdir()
    (fiji / "jars" / "ij-1.54f.jar").write_bytes(b"PK")
    if with_java:
        java = fiji / "java" / "linux-amd64" / "zulu21-jdk" / "bin" / "java"
        java.parent.mkdir(parents=True)
        java.write_text("#!/bin/sh\n")
        java.chmod(0o755)
    return fiji


def test_find_fiji(tmp_path, monkeypatch):
    monkeypatch.delenv("FIJI_HOME", raising=False)
    assert connect.find_fiji(None) is None
    with pytest.raises(connect.ImageJError, match="does not look like Fiji"):
        connect.find_fiji(tmp_path)
    fiji = _fake_fiji(tmp_path, with_java=False)
    monkeypatch.setenv("FIJI_HOME", str(fiji))
    assert connect.find_fiji(None) == fiji


def test_fiji_plan_uses_the_bundled_java(tmp_path, monkeypatch):
    fiji = _fake_fiji(tmp_path, with_java=True)
    plan = connect.fiji_plan(fiji, heap="6g", headless=False,
                             endpoints=["net.imglib2:imglib2-imglyb:1.1.0"])
    assert plan.java_home == fiji / "java" / "linux-amd64" / "zulu21-jdk"
    assert plan.set_java_home and plan.mode == "interactive"
    assert "-Xmx6144m" in plan.options
    assert "--add-opens=java.base/java.lang=ALL-UNNAMED" in plan.options
    assert plan.removed_endpoints == ["net.imglib2:imglib2-imglyb:1.1.0"]


def test_fiji_without_any_java_is_an_error_not_a_download(tmp_path, monkeypatch):
    fiji = _fake_fiji(tmp_path, with_java=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(connect.ImageJError, match="nothing is downloaded"):
        connect.fiji_plan(fiji)


_START_FIJI_PROBE = r"""
import json, os, sys
from pathlib import Path
import imagej, scyjava
from golddigger.imagej import connect

fiji = Path(sys.argv[1])
seen = {"endpoints_before": list(scyjava.config.endpoints),
        "fetch_before": scyjava.config.get_fetch_java()}

class FakeIJ:
    @staticmethod
    def getVersion():
        return "1.54f"

class FakeGateway:
    def ui(self):
        return self
    def showUI(self):
        seen["shown"] = True

def fake_init(path, mode):
    seen.update(path=path, mode=mode, endpoints=list(scyjava.config.endpoints),
                fetch=scyjava.config.get_fetch_java(), java_home=os.environ["JAVA_HOME"],
                options=list(scyjava.config.get_options()))
    return FakeGateway()

imagej.init = fake_init
scyjava.jimport = lambda name: FakeIJ
conn = connect._start_fiji(fiji, "2g", headless=False)
seen.update(kind=conn.kind, version=conn.version)
print(json.dumps(seen))
"""


def test_start_fiji_clears_maven_endpoints_and_jdk_fetch(tmp_path):
    """`_start_fiji` up to ``imagej.init`` (which needs a real Fiji, absent here): the JVM
    must start with no Maven endpoint and no JDK download planned. Run in a fresh Python:
    importing pyimagej once a JVM runs (the ImageJ tests start one) fails."""
    import importlib.util
    import json
    import subprocess

    if importlib.util.find_spec("imagej") is None:
        pytest.skip("pyimagej is not installed")
    fiji = _fake_fiji(tmp_path, with_java=True)
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    proc = subprocess.run([sys.executable, "-c", _START_FIJI_PROBE, str(fiji)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    # what pyimagej/scyjava would do on their own: Maven (imglyb) and a JDK download
    assert seen["endpoints_before"] and seen["fetch_before"] == "always"
    assert seen["endpoints"] == []
    assert seen["fetch"] == "auto"
    assert seen["path"] == str(fiji) and seen["mode"] == "interactive" and seen["shown"]
    assert seen["java_home"].endswith("zulu21-jdk")
    assert "-Xmx2048m" in seen["options"]
    assert "--add-opens=java.base/java.lang=ALL-UNNAMED" in seen["options"]
    assert seen["kind"] == "fiji" and seen["version"] == "1.54f"


# ---------------------------------------------------------------------------- backend
def test_safe_stem():
    assert backend.safe_stem("S1 synapse.tif") == "S1_synapse"
    assert backend.safe_stem("../../etc/passwd") == "passwd"
    assert backend.safe_stem("a;b$(rm -rf x).jpg") == "a_b_rm_-rf_x"
    assert backend.safe_stem("zoë.tiff") == "zoë"
    assert backend.safe_stem("...") == "image"


def test_region_file_beside_an_image(tmp_path):
    img = tmp_path / "S1.tif"
    assert backend.find_region_file(img) is None
    outline = ImagejRoi.frompoints(np.array([(10, 10), (90, 12), (80, 70)], dtype=np.int32))
    outline.roitype = ROI_TYPE.POLYGON
    outline.tofile(tmp_path / "S1.roi")
    (tmp_path / "S1_membrane.roi").write_bytes(b"")  # unreadable: not a region
    assert backend.find_region_file(img) == tmp_path / "S1.roi"
    outline.tofile(tmp_path / "S1_membrane.roi")
    assert backend.find_region_file(img) == tmp_path / "S1_membrane.roi"


def _roiset(path: Path) -> Path:
    """A ROI Manager save as a user leaves it: detections (write_roiset ovals), a point
    they added (no class), a point named 12nm, and the membrane polygon."""
    det = ParticleTable([100.0, 200.0], [50.0, 60.0], [6.0, 12.0], [0.9, 0.8], [0, 1])
    write_roiset(path, det, PX, positions=True)
    extra = []
    p = ImagejRoi.frompoints(np.array([[30.0, 40.0]]))
    p.roitype, p.name = ROI_TYPE.POINT, "added"
    extra.append(p)
    q = ImagejRoi.frompoints(np.array([[70.0, 80.0]]))
    q.roitype, q.name, q.position = ROI_TYPE.POINT, "12nm", 2
    extra.append(q)
    poly = ImagejRoi.frompoints(np.array([[0, 0], [300, 0], [300, 300]]))
    poly.roitype, poly.name = ROI_TYPE.POLYGON, "membrane"
    extra.append(poly)
    with zipfile.ZipFile(path, "a") as zf:
        for r in extra:
            zf.writestr(r.name + ".roi", r.tobytes())
    return path


def test_particles_from_a_roi_manager_save(tmp_path):
    zpath = _roiset(tmp_path / "rm.zip")
    all_ = backend.particles_from_roiset(zpath, PX, default_class=18)
    by_xy = {(round(x, 3), round(y, 3)): (d, s) for x, y, d, _, s in all_}
    assert by_xy == {(100.0, 50.0): (6.0, 0), (200.0, 60.0): (12.0, 1),
                     (30.0, 40.0): (18.0, 0), (70.0, 80.0): (12.0, 1)}
    # current slice 1 (0-based): its particles only, plus those without a position
    cur = backend.particles_from_roiset(zpath, PX, default_class=18, current_slice=1)
    got = sorted(zip(np.round(cur.x, 3), cur.diameter_nm, strict=True))
    assert got == [(30.0, 18.0), (70.0, 12.0), (200.0, 12.0)]
    assert set(cur.slice) == {0}


def test_training_pair_round_trips_into_train_input(tmp_path):
    zpath = _roiset(tmp_path / "rm.zip")
    particles = backend.particles_from_roiset(zpath, PX, default_class=6, current_slice=0)
    data = (np.random.default_rng(0).random((320, 330)) * 255).astype(np.uint8)
    pair = backend.save_training_pair(data, PX, particles, tmp_path / "train", "my image.tif")
    assert pair.image.name == "my_image.tif" and pair.csv.name == "my_image.csv"
    again = read_particles(pair.csv)
    assert again == ParticleTable.from_csv(pair.csv)
    assert len(again) == 2
    key = np.lexsort((particles.x, particles.y))
    key2 = np.lexsort((again.x, again.y))
    assert np.allclose(again.xy[key2], particles.xy[key], atol=0.01)
    assert np.array_equal(again.diameter_nm[key2], particles.diameter_nm[key])
    img = read_image(pair.image)
    assert img.pixel_size_nm == pytest.approx(PX) and np.array_equal(img.data, data)
    with pytest.raises(GoldDiggerError, match="already exists"):
        backend.save_training_pair(data, PX, particles, tmp_path / "train", "my image")


def test_training_pair_needs_particles(tmp_path):
    with pytest.raises(GoldDiggerError, match="no particles"):
        backend.save_training_pair(np.zeros((10, 10), np.uint8), PX, ParticleTable.empty(),
                                   tmp_path, "x")
    with pytest.raises(AnnotationError):
        backend.particles_from_roiset(tmp_path / "missing.zip", PX, 6)


# ---------------------------------------------------------------------------- --call
def test_call_training_from_the_command_line(tmp_path, capsys):
    """What Add to Training Set's macro runs (no Java): copies -> training pair."""
    from golddigger.io.images import write_tiff

    data = (np.arange(200 * 210) % 251).astype(np.uint8).reshape(200, 210)
    write_tiff(tmp_path / "image.tif", data, PX)
    zpath = _roiset(tmp_path / "rm.zip")
    folder = tmp_path / "we'ird; $(touch pwned) ü"
    code = main(["imagej", "--call=training", f"--image={tmp_path / 'image.tif'}",
                 f"--rois={zpath}", f"--options=folder=[{folder}] default_class=12",
                 "--current-slice=0", "--name=-S1 (copy).tif"])
    out = capsys.readouterr().out
    assert code == 0, out
    # slice 0: the 6 nm detection and the added point (default class); the others are on
    # slice 1
    assert out.startswith("GOLDDIGGER OK particles=2 ")
    pair = read_particles(folder / "S1_copy.csv")
    assert sorted(pair.diameter_nm) == [6.0, 12.0]
    assert not (Path.cwd() / "pwned").exists() and not (tmp_path / "pwned").exists()


def test_call_errors_are_one_status_line(tmp_path, capsys):
    code = main(["imagej", "--call=detect", f"--image={tmp_path / 'missing.tif'}",
                 f"--out={tmp_path}"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 2 and len(out) == 1 and out[0].startswith("GOLDDIGGER ERROR ")
    assert "missing.tif" in out[0]


# ---------------------------------------------------------------------------- watch
def test_watch_cancels_when_the_heartbeat_stops_and_removes_the_folder(tmp_path):
    """The detached call's side of Esc: a fresh heartbeat keeps it going, a stale one
    cancels it, and a cancelled call removes its temporary folder."""
    import time

    from golddigger.imagej import watch

    folder = tmp_path / "golddigger-x"
    folder.mkdir()
    (folder / watch.HEARTBEAT).write_text("1")
    w = watch.Watch(folder, stale_s=0.6, poll_s=0.05)
    for _ in range(10):  # the macro touches the heartbeat: not cancelled
        (folder / watch.HEARTBEAT).write_text("1")
        time.sleep(0.1)
    assert not w.is_set()
    w.progress(2, 5)
    assert (folder / watch.PROGRESS).read_text().split() == ["2", "5"]
    time.sleep(1.2)  # the macro is gone (Esc)
    assert w.is_set()
    w.finish()
    assert not folder.exists()


def test_watch_finishing_normally_marks_done(tmp_path, monkeypatch):
    """A finished call writes ``done``; results nobody collects are swept later."""
    import time

    from golddigger.imagej import watch

    monkeypatch.setenv("GOLDDIGGER_ABANDONED_S", "0.5")
    folder = tmp_path / "golddigger-z"
    folder.mkdir()
    (folder / watch.HEARTBEAT).write_text("1")
    w = watch.Watch(folder, stale_s=30)
    w.finish()
    assert (folder / watch.DONE).is_file() and not w.is_set()
    for _ in range(50):
        if not folder.exists():
            break
        time.sleep(0.1)
    assert not folder.exists()


def test_detach_starts_the_call_in_the_background_and_returns(tmp_path):
    """``--call=... --detach`` prints GOLDDIGGER STARTED at once; the background call writes
    its status line to status.txt and then ``done`` (here: an error status for a missing
    image, which needs no model)."""
    import subprocess
    import time

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "call"
    proc = subprocess.run([sys.executable, "-m", "golddigger.cli.main", "imagej",
                           "--call=detect", "--detach", f"--image={tmp_path / 'none.tif'}",
                           f"--out={out}"], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.stdout.startswith("GOLDDIGGER STARTED pid="), proc.stdout + proc.stderr
    (out / "heartbeat").write_text("1")
    for _ in range(600):
        if (out / "done").exists():
            break
        (out / "heartbeat").write_text("1")
        time.sleep(0.1)
    assert (out / "status.txt").read_text().startswith("GOLDDIGGER ERROR")


def test_served_detached_call_says_done_only_after_its_status_line(tmp_path, monkeypatch):
    """A detached call that the service runs: the service's stdout goes back to the client,
    whose stdout is status.txt, so the service must not write ``done`` (the macro would read
    an empty status: "no answer from golddigger"); the client writes it after the line."""
    import contextlib
    import io

    from golddigger.cli.main import build_parser
    from golddigger.imagej import calls, service, watch

    out = tmp_path / "call"
    out.mkdir()
    (out / watch.HEARTBEAT).write_text("1")
    argv = ["imagej", "--call=detect", f"--image={tmp_path / 'none.tif'}", f"--out={out}",
            f"--watch={out}"]
    monkeypatch.setenv("GOLDDIGGER_IN_SERVICE", "1")  # as the service runs it
    monkeypatch.setattr(sys, "argv", ["golddigger", *argv])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 2
    assert buf.getvalue().startswith("GOLDDIGGER ERROR")
    assert not (out / watch.DONE).exists(), "done before the client wrote the status line"

    # the client: writes the service's answer to its stdout (status.txt), then done
    monkeypatch.delenv("GOLDDIGGER_IN_SERVICE")
    monkeypatch.setenv("GOLDDIGGER_SERVICE", "1")
    answer = {"stdout": buf.getvalue(), "code": 2}
    monkeypatch.setattr(service, "call", lambda argv, pid: answer)
    seen = []
    real_mark = watch.mark_done
    monkeypatch.setattr(watch, "mark_done", lambda folder: (
        seen.append((out / watch.STATUS).read_text()), real_mark(folder))[1])
    with open(out / watch.STATUS, "w", encoding="utf-8") as status, \
            contextlib.redirect_stdout(status):
        assert calls.run_call(build_parser().parse_args(argv)) == 2
    assert seen and seen[0].startswith("GOLDDIGGER ERROR")
    assert (out / watch.DONE).is_file()
    # a call the service cancelled (folder removed): the client does not bring it back
    import shutil

    shutil.rmtree(out)
    assert real_mark(out) is False and not out.exists()


def test_documented_command_block_is_found():
    """The tests run docs/imagej.md's tested-commands block: it must hold the batch lines
    that name the plugins folder."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "imagej.md").read_text()
    block = text.split("<!-- tested-commands -->", 1)[1].split("<!-- /tested-commands -->")[0]
    java = [ln for ln in block.splitlines() if "java -jar" in ln]
    assert java and all("-ijpath ~/.imagej" in ln or "-Dplugins.dir" in ln for ln in java)
    assert "java -jar /usr/share/java/ij.jar -batch" not in text.replace("-ijpath ~/.imagej ", "X")


def test_rerun_options_and_dialog_hints():
    fields = {f.key: f for f in DETECT_FIELDS}
    values = parse_options("", DETECT_FIELDS)
    assert values["rerun"] == "replace" and values["add_to"] == "roi_manager"
    assert values["results"] is False
    assert "0 = model's" in fields["threshold"].label and "nm" in fields["pixel_size"].label
    with pytest.raises(GoldDiggerError):
        parse_options("add_to=clipboard", DETECT_FIELDS)


def test_help_button_has_about_and_citation(tmp_path):
    """Both dialogs' Help: every field, the version, the default model and what to cite."""
    from golddigger import __version__
    from golddigger.imagej.options import help_html
    from golddigger.model.folder import DEFAULT_MODEL

    text = help_html("Detect Gold", DETECT_FIELDS)
    assert __version__ in text and DEFAULT_MODEL in text and "Jerez et al." in text
    assert "Scientific Reports" in text and "docs/imagej.md" in text
    d = tmp_path / "ij"
    (d / "plugins").mkdir(parents=True)
    installed = install.install(d, argv=[sys.executable])
    macro = next(p for p in installed.files if p.name == "detect-gold.txt").read_text()
    assert "Jerez et al." in macro and DEFAULT_MODEL in macro


# ---------------------------------------------------------------------------- service
@pytest.fixture()
def private_service(tmp_path, monkeypatch):
    """The service's folder in this test's own runtime dir; short idle time."""
    import shutil
    import tempfile

    run_dir = Path(tempfile.mkdtemp(prefix="gds-"))  # short: a socket path has ~100 bytes
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run_dir))
    monkeypatch.setenv("GOLDDIGGER_SERVICE_IDLE_S", "4")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("GOLDDIGGER_IN_SERVICE", raising=False)
    from golddigger.imagej import service

    yield service
    # whatever happens, no service outlives the test
    for p in run_dir.rglob("*.sock"):
        with __import__("contextlib").suppress(OSError):
            p.unlink()
    shutil.rmtree(run_dir, ignore_errors=True)


def test_service_is_private_restarts_after_a_crash_and_ends_when_idle(private_service,
                                                                      tmp_path):
    """The first call starts the service (a Unix socket in a 0700 folder, the socket 0600, no
    network port); later calls reuse it; a killed service is replaced and the call retried;
    an idle service ends by itself."""
    import signal
    import stat
    import time

    service = private_service
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["imagej", "--call=folder-summary", f"--out={empty}"]
    first = service.call(argv, imagej_pid=os.getpid())
    # the engine writes an empty summary for a folder with no finished image
    assert first is not None and first["stdout"].startswith("GOLDDIGGER OK summary=")
    folder, sock = service.service_dir(), service.socket_path()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600
    second = service.call(argv, imagej_pid=os.getpid())
    assert second["pid"] == first["pid"], "a later call must reuse the running service"
    os.kill(first["pid"], signal.SIGKILL)  # a crashed service (its socket file stays)
    time.sleep(0.3)
    third = service.call(argv, imagej_pid=os.getpid())
    assert third is not None and third["pid"] != first["pid"]
    assert third["stdout"] == first["stdout"]
    for _ in range(200):  # idle for 4 s: it ends and removes its socket
        if not sock.exists():
            break
        time.sleep(0.1)
    assert not sock.exists()
    stat_file = Path(f"/proc/{third['pid']}/stat")
    for _ in range(50):  # gone, or a zombie waiting for this test process to reap it
        if not stat_file.exists() or stat_file.read_text().split()[2] == "Z":
            break
        time.sleep(0.1)
    assert not stat_file.exists() or stat_file.read_text().split()[2] == "Z"


def _ended(pid: int, seconds: float = 10.0) -> bool:
    import time

    stat_file = Path(f"/proc/{pid}/stat")
    for _ in range(int(seconds * 10)):
        if not stat_file.exists() or stat_file.read_text().split()[2] == "Z":
            return True
        time.sleep(0.1)
    return False


def test_replaced_service_ends(private_service, tmp_path, monkeypatch):
    """A service whose socket another one took over ends at once (two commands started a
    service together) instead of waiting out its idle time unreachable."""
    service = private_service
    monkeypatch.setenv("GOLDDIGGER_SERVICE_IDLE_S", "120")
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["imagej", "--call=folder-summary", f"--out={empty}"]
    first = service.call(argv, imagej_pid=os.getpid())
    service.socket_path().unlink()  # as a second starter does before binding its own
    second = service.call(argv, imagej_pid=os.getpid())
    assert second["pid"] != first["pid"]
    assert _ended(first["pid"]), "the replaced service must end"
    assert not _ended(second["pid"], 1.0), "the current one serves on"
    os.kill(second["pid"], 9)
    assert _ended(second["pid"])


def test_watch_removes_results_nobody_will_collect(tmp_path):
    """A call that ends after the macro was stopped (its heartbeat already stale) removes its
    folder instead of leaving the results behind."""
    import time

    from golddigger.imagej import watch

    folder = tmp_path / "golddigger-y"
    folder.mkdir()
    beat = folder / watch.HEARTBEAT
    beat.write_text("1")
    old = time.time() - watch.GONE_S - 2
    os.utime(beat, (old, old))
    w = watch.Watch(folder, stale_s=60)
    (folder / "rois.zip").write_bytes(b"x")
    w.finish()
    assert not folder.exists()


def test_messages_speak_imagej(tmp_path, capsys):
    """Errors shown in ImageJ name dialog fields and menus, not flags, and the image's title,
    not the installed command's temporary copy."""
    from golddigger.imagej.messages import imagej_terms

    text = imagej_terms("/tmp/golddigger-1.7963E12-689331/image.tif: the pixel size is "
                        "unknown; give it with --pixel-size NM (nm per pixel), or set it in "
                        "ImageJ (Image > Properties) and save as TIFF", "synapse 1.tif")
    assert text.startswith("synapse 1.tif: the pixel size is unknown")
    assert "--" not in text and "golddigger-" not in text and "Pixel size field" in text
    assert "dialog's Overwrite option" in imagej_terms("exists; use --overwrite")
    # the installed command's call on an uncalibrated temporary copy
    from golddigger.io.images import write_tiff

    tmp = tmp_path / "golddigger-1.7963E12-42"
    tmp.mkdir()
    write_tiff(tmp / "image.tif", np.zeros((64, 64), np.uint8), None)
    code = main(["imagej", "--call=detect", f"--image={tmp / 'image.tif'}", f"--out={tmp}",
                 "--name=my image.tif"])
    out = capsys.readouterr().out.strip()
    assert code == 2 and out.startswith("GOLDDIGGER ERROR my image.tif"), out
    assert "--" not in out and str(tmp) not in out


@pytest.mark.parametrize("threshold, classes", [(None, None), (0.3, None), (0.6, None),
                                                (None, [12]), (None, [10, 20]),
                                                (None, [5, 25])])
def test_preview_candidates_equal_predict(threshold, classes):
    """Fiji's Preview shows what Detect Gold adds: the live candidates, re-thresholded
    without the network, equal `Detector.predict` on the same plane and region."""
    import numpy as np

    from golddigger.imagej.preview import Candidates
    from golddigger.io.regions import Region
    from golddigger.model.detector import Detector
    from golddigger.synth import SynthConfig, generate

    det = Detector.from_pretrained(threads=1, precision="float32")
    sample = generate(SynthConfig(shape=(320, 320)), seed=5)
    plane = np.asarray(sample.image)
    px = sample.pixel_size_nm
    region = Region.from_polygon([(20, 20), (300, 40), (280, 300), (30, 260)])
    cands = Candidates(det, plane, px, region)
    calls = []
    hook = det._net.register_forward_hook(lambda *a: calls.append(1))
    # sizes the model does not have (10/20 nm) need their own candidates: the network
    # runs once more for them, then no more
    assert cands.ready(classes) == (classes not in ([10, 20], [5, 25]))
    cands.prepare(classes)
    calls.clear()
    got = cands.at(threshold, classes)
    assert calls == []  # re-thresholding runs no network
    want = det.predict(plane, px, threshold=threshold, region=region, classes=classes)
    hook.remove()
    assert calls  # (the hook does see the network when it runs)
    assert len(got) == len(want) > 0
    np.testing.assert_allclose(got.xy, want.xy, atol=1e-6)
    np.testing.assert_array_equal(got.diameter_nm, want.diameter_nm)


# ---------------------------------------------------------------------------- layout
@pytest.mark.parametrize("image", [(0, 80, 430, 420), (528, 81, 430, 421), None])
def test_result_windows_beside_the_image_and_apart(image):
    from golddigger.imagej.layout import result_windows

    screen = (1280, 1024)
    where = result_windows(screen, image, (221, 253))
    boxes = list(where.values()) + ([image] if image else [])
    for i, (x, y, w, h) in enumerate(boxes):
        assert x >= 0 and x + w <= screen[0] and y >= 0 and y + h <= screen[1]
        for bx, by, bw, bh in boxes[i + 1:]:
            assert not (x < bx + bw and bx < x + w and y < by + bh and by < y + h)


def test_result_windows_on_a_small_screen_stay_on_it():
    from golddigger.imagej.layout import result_windows

    where = result_windows((800, 600), (0, 60, 790, 500))
    assert all(0 <= x and x + w <= 800 for x, _, w, _ in where.values())


# ---------------------------------------------------------------------------- preview
def test_installed_preview_reuses_the_maps_and_equals_predict(tmp_path, tiny_model,
                                                              monkeypatch):
    """``--call preview`` (the installed dialog's Preview): the class maps are computed once
    for the dialog; a new threshold re-filters the kept candidates, and what it shows
    equals `Detector.predict` with that threshold."""
    import argparse

    from golddigger import live
    from golddigger.imagej import calls
    from golddigger.io.images import write_tiff
    from golddigger.synth import SynthConfig, generate

    sample = generate(SynthConfig(shape=(256, 256), counts={6: 8, 12: 3}), seed=4)
    write_tiff(tmp_path / "image.tif", sample.image, PX)
    runs = []
    real = live.find_candidates
    monkeypatch.setattr(live, "find_candidates", lambda *a, **k: runs.append(1) or real(*a, **k))
    det = backend.get_detector(str(tiny_model))
    lines = {}
    for thr in (0.2, 0.6):
        args = argparse.Namespace(options=f"model=[{tiny_model}] threshold={thr}",
                                  out=tmp_path, image=tmp_path / "image.tif", roi="",
                                  slices="0")
        info = calls._call_preview(args)
        want = det.predict(sample.image, PX, threshold=thr)
        assert info["particles"] == len(want)
        lines[thr] = (tmp_path / "preview.csv").read_text().splitlines()[1:]
        assert len(lines[thr]) == len(want)
        assert f"{len(want)} particles" in (tmp_path / "preview.txt").read_text()
    assert runs == [1]  # the network ran for the first preview only
    assert info["maps"] == "reused"
    # sizes the model does not have: candidates of their own, found at their scale and
    # measured, as Detect Gold reports them (not the model's classes relabelled)
    args = argparse.Namespace(options=f"model=[{tiny_model}] classes=10,20", out=tmp_path,
                              image=tmp_path / "image.tif", roi="", slices="0")
    info = calls._call_preview(args)
    want = det.predict(sample.image, PX, classes=[10, 20])
    assert runs == [1, 1] and info["maps"] == "computed"
    assert info["particles"] == len(want)
    sizes = [float(line.split(",")[3]) * PX for line in
             (tmp_path / "preview.csv").read_text().splitlines()[1:]]
    np.testing.assert_allclose(sorted(sizes), sorted(want.diameter_nm), rtol=1e-3)
