// ---- Gold Digger: functions shared by the menu commands --------------------------------
// `golddigger install-fiji` appends this file to each command it installs, after the
// generated part (GD_* constants, gdAsk() for the dialog and gdCall() which runs the
// golddigger program with an argument array: no shell, any file name is safe).

// Stop, with a message, when the golddigger program these commands run is gone (its Python
// environment moved or deleted). In a -batch run exit() prints the message on the terminal.
function gdRequireBackend() {
	if (File.exists(GD_PROGRAM_FILE)) return;
	exit("Gold Digger: the Python program behind Plugins > Gold Digger is missing: "
		+ GD_PROGRAM_FILE + ". Reinstall the commands from the Python environment that has "
		+ "Gold Digger (golddigger install-fiji), then Help > Refresh Menus.");
}

// Whether this command was run by a macro (run("...") renames the thread "Run$_...");
// a menu click runs it on a new thread named after the command.
function gdFromMacro() {
	th = "" + call("java.lang.Thread.currentThread");
	if (indexOf(th, "Run$_") >= 0) return true;
	return false;
}

// The value of a key in a macro option string ("" when absent).
function gdValue(opts, key, default) {
	v = call("ij.Macro.getValue", " " + opts + " ", key, default);
	return v;
}

// "key=value " for a macro option string, the value in [] when it is empty or has a space.
function gdOption(key, value) {
	if (value == "" || indexOf(value, " ") >= 0) value = "[" + value + "]";
	return key + "=" + value + " ";
}

// A number for a macro option string, without trailing zeros: 0.4, 0, 12.5 (9 decimals at
// most).
function gdNumber(x) {
	s = d2s(x, 9);
	if (indexOf(s, ".") < 0) return s;
	while (endsWith(s, "0")) s = substring(s, 0, lengthOf(s) - 1);
	if (endsWith(s, ".")) s = substring(s, 0, lengthOf(s) - 1);
	return s;
}

// Whether a check box key is set in a macro option string.
function gdFlag(opts, key) {
	if (indexOf(" " + opts + " ", " " + key + " ") >= 0) return true;
	return false;
}

// Whether a dialog's check box starts ticked: its default when `current` is "" (the first
// dialog), else whether the option string `current` has it.
function gdChecked(current, key, default) {
	if (current == "") return default;
	return gdFlag(current, key);
}

// Replace or add key=value in a macro option string.
function gdSet(opts, key, value) {
	s = " " + opts + " ";
	k = indexOf(s, " " + key + "=");
	if (k < 0) return opts + " " + key + "=[" + value + "]";
	e = k + lengthOf(key) + 2;
	if (substring(s, e, e + 1) == "[") {
		e = indexOf(s, "]", e) + 1;
	} else {
		e = indexOf(s, " ", e);
	}
	return substring(s, 1, k + 1) + key + "=[" + value + "]" + substring(s, e, lengthOf(s) - 1);
}

// A new, empty temporary folder (ends with the file separator).
function gdTempDir() {
	base = getDirectory("temp");
	dir = base + "golddigger-" + getTime() + "-" + floor(random * 1000000) + File.separator;
	File.makeDirectory(dir);
	if (!File.isDirectory(dir))
		exit("Gold Digger: cannot create a temporary folder in " + base);
	return dir;
}

// Delete a temporary folder made by gdTempDir() and the files in it.
function gdCleanup(dir) {
	list = getFileList(dir);
	for (i = 0; i < list.length; i++)
		ok = File.delete(dir + list[i]);
	ok = File.delete(dir);
}

// The status line of the golddigger program's output ("GOLDDIGGER OK ..." or
// "GOLDDIGGER ERROR ...").
function gdStatus(out) {
	lines = split(out, "\n");
	for (i = 0; i < lines.length; i++)
		if (startsWith(lines[i], "GOLDDIGGER OK")) return lines[i];
	for (i = 0; i < lines.length; i++)
		if (startsWith(lines[i], "GOLDDIGGER ERROR")) return lines[i];
	if (lengthOf(out) > 300) out = substring(out, 0, 300) + "...";
	return "GOLDDIGGER ERROR no answer from " + GD_PROGRAM + " (" + out + "); run "
		+ "'golddigger imagej --help' in a terminal, or reinstall with 'golddigger install-fiji'";
}

// Stop with the error of a status line, if it is one; returns the status line.
function gdCheck(status, tmp) {
	if (startsWith(status, "GOLDDIGGER ERROR")) {
		if (tmp != "") gdCleanup(tmp);
		exit("Gold Digger: " + GD_COMMAND + ":\n" + substring(status, 17));
	}
	return status;
}

// key=value from a status line ("" when absent).
function gdField(status, key) {
	s = " " + status + " ";
	k = indexOf(s, " " + key + "=");
	if (k < 0) return "";
	b = k + lengthOf(key) + 2;
	e = indexOf(s, " ", b);
	return substring(s, b, e);
}

// Save the current selection (and its name) to restore it later with gdRestoreSelection.
var gdKeptName = "";
function gdKeepSelection(tmp) {
	gdKeptName = Roi.getName;
	saveAs("Selection", tmp + "selection-keep.roi");
}

// Put the selection saved by gdKeepSelection back on the current image.
function gdRestoreSelection(tmp) {
	open(tmp + "selection-keep.roi");
	Roi.setName(gdKeptName);
}

// Whether the selection type is an area (rectangle, oval, polygon, freehand, traced,
// composite).
function gdIsArea(t) {
	if (t == 9) return true;
	if (t >= 0 && t <= 4) return true;
	return false;
}

// Save the region to count in (selection, ROI Manager, or none) as an ImageJ ROI file in
// tmp; returns its path, or "" for the whole image. May change the selection and slice.
function gdSaveRegion(choice, tmp) {
	path = tmp + "region.roi";
	if (choice == "image") return "";
	if (choice == "roi_manager") {
		n = roiManager("count");
		idx = newArray(0);
		for (i = 0; i < n; i++) {
			name = call("ij.plugin.frame.RoiManager.getName", "" + i);
			if (startsWith(name, "gold-")) continue;
			roiManager("select", i);
			if (gdIsArea(selectionType())) idx = Array.concat(idx, i);
		}
		if (idx.length == 0)
			exit("Gold Digger: region=roi_manager but the ROI Manager has no area ROI (other "
				+ "than gold-* particles); add the membrane outline to it, or use region=selection");
		if (idx.length == 1) {
			roiManager("select", idx[0]);
		} else {
			roiManager("select", idx);
			roiManager("Combine");
		}
		saveAs("Selection", path);
		roiManager("Deselect");
		return path;
	}
	if (!gdIsArea(selectionType())) return "";
	if (startsWith(Roi.getName, "gold-")) return "";  // a particle, not a membrane outline
	saveAs("Selection", path);
	return path;
}

// Save planes of the current image as tmp/image.tif: the current plane, or (whole) every
// plane of the current channel. Returns the 0-based stack index of each saved plane,
// comma separated. Keeps the image's selection and position.
function gdSaveImage(tmp, whole) {
	id = getImageID();
	getDimensions(w, h, channels, slices, frames);
	cur = getSliceNumber();
	Stack.getPosition(ch, sl, fr);
	hadSel = selectionType() >= 0;
	if (hadSel) gdKeepSelection(tmp);
	run("Select None");
	map = "";
	if (whole && nSlices > 1) {
		if (channels > 1) {
			run("Duplicate...", "title=golddigger-copy duplicate channels=" + ch);
			for (t = 1; t <= frames; t++)
				for (z = 1; z <= slices; z++) {
					if (map != "") map = map + ",";
					map = map + ((t - 1) * slices * channels + (z - 1) * channels + ch - 1);
				}
		} else {
			run("Duplicate...", "title=golddigger-copy duplicate");
			for (i = 0; i < nSlices; i++) {
				if (map != "") map = map + ",";
				map = map + i;
			}
		}
	} else {
		run("Duplicate...", "title=golddigger-copy");
		map = "" + (cur - 1);
	}
	saveAs("Tiff", tmp + "image.tif");
	close();
	selectImage(id);
	setSlice(cur);
	if (hadSel) gdRestoreSelection(tmp);
	return map;
}

// The image's calibration unit for the tables, as plain ASCII where possible.
function gdUnit() {
	getPixelSize(unit, pw, ph);
	u = toLowerCase(unit);
	if (u == "micron" || u == "microns" || u == "um") return "um";
	if (lengthOf(u) == 2 && endsWith(u, "m")) {
		if (charCodeAt(u, 0) > 127) return "um";
	}
	return unit;
}

// Whether ImageJ can colour ROI groups (Fiji has luts/Glasbey.lut; Debian's ImageJ has not,
// and then logs "LUT not found" for every grouped ROI).
function gdGroups() {
	d = getDirectory("luts");
	if (d == "") return 0;
	if (File.exists(d + "Glasbey.lut")) return 1;
	return 0;
}

// Give the particle ROIs of each class their class colour again (ImageJ paints grouped
// ROIs in the group's colour when it opens them).
function gdRecolour() {
	for (g = 0; g < GD_GROUPS.length; g++) {
		RoiManager.selectGroup(GD_GROUPS[g]);
		if (roiManager("index") >= 0) roiManager("Set Color", GD_COLOURS[g]);
	}
	roiManager("Deselect");
}

// Split one CSV line (no quoted commas: the golddigger program writes none).
function gdCells(line) {
	return split(line, ",");
}

// Fill ImageJ's Results table from a CSV file (replacing its rows).
function gdLoadResults(path) {
	run("Clear Results");
	if (!File.exists(path)) return 0;
	lines = split(File.openAsString(path), "\n");
	if (lines.length < 1) return 0;
	head = gdCells(lines[0]);
	row = 0;
	for (i = 1; i < lines.length; i++) {
		if (lines[i] == "") continue;
		cells = gdCells(lines[i]);
		for (j = 0; j < head.length && j < cells.length; j++) {
			v = parseFloat(cells[j]);
			if (isNaN(v) && cells[j] != "NaN") setResult(head[j], row, cells[j]);
			else setResult(head[j], row, v);
		}
		row++;
	}
	updateResults();
	return row;
}

// Put the rows of a CSV file into the table window `title` (made if needed), after its
// rows (append) or instead of them.
function gdLoadTable(path, title, append) {
	if (!File.exists(path)) return;
	lines = split(File.openAsString(path), "\n");
	if (!append && isOpen(title)) {
		selectWindow(title);
		run("Close");
	}
	if (!isOpen(title)) Table.create(title);
	if (lines.length < 1) return;
	head = gdCells(lines[0]);
	row = Table.size(title);
	for (i = 1; i < lines.length; i++) {
		if (lines[i] == "") continue;
		cells = gdCells(lines[i]);
		for (j = 0; j < head.length && j < cells.length; j++) {
			v = parseFloat(cells[j]);
			if (isNaN(v) && cells[j] != "NaN") Table.set(head[j], row, cells[j], title);
			else Table.set(head[j], row, v, title);
		}
		row++;
	}
	Table.update(title);
}

// Add the rows of a CSV file to the table "Gold Digger Summary".
function gdAppendSummary(path) {
	gdLoadTable(path, "Gold Digger Summary", true);
}

// ",1,3," from a comma-separated list of 0-based stack indexes ("0,2").
function gdOneBased(map) {
	parts = split(map, ",");
	s = ",";
	for (i = 0; i < parts.length; i++) s = s + (parseInt(parts[i]) + 1) + ",";
	return s;
}

// Remove the particle ROIs that an earlier Detect Gold put on image `title` (ROI Manager and
// overlay of the current image) on the slices of `map` (0-based stack indexes) or without
// a slice. Drops the selection.
function gdRemoveEarlier(title, map) {
	wanted = gdOneBased(map);
	n = roiManager("count");
	for (i = n - 1; i >= 0; i--) {
		name = call("ij.plugin.frame.RoiManager.getName", "" + i);
		if (!startsWith(name, "gold-")) continue;
		roiManager("select", i);
		if (Roi.getProperty("image") != title) continue;
		Roi.getPosition(c, z, t);
		if (z == 0 || indexOf(wanted, "," + z + ",") >= 0) roiManager("delete");
	}
	if (roiManager("count") > 0) roiManager("Deselect");
	for (i = Overlay.size - 1; i >= 0; i--) {
		Overlay.activateSelection(i);
		if (!startsWith(Roi.getName, "gold-")) continue;
		if (Roi.getProperty("image") != title) continue;
		Roi.getPosition(c, z, t);
		if (z == 0 || indexOf(wanted, "," + z + ",") >= 0) Overlay.removeSelection(i);
	}
	run("Select None");
}

// Delete the rows of table `table` about image `title` on the slices of `map`.
function gdDeleteRows(table, title, map) {
	if (!isOpen(table)) return;
	if (Table.size(table) == 0) return;
	wanted = gdOneBased(map);
	// the particle table says Image/Slice, the summary (the CLI's columns) image/slice
	head = "\t" + Table.headings(table) + "\t";
	ic = "Image";
	sc = "Slice";
	if (indexOf(head, "\tImage\t") < 0) {
		ic = "image";
		sc = "slice";
	}
	if (indexOf(head, "\t" + ic + "\t") < 0) return;
	for (i = Table.size(table) - 1; i >= 0; i--) {
		if (Table.getString(ic, i, table) != title) continue;
		s = Table.get(sc, i, table);
		if (indexOf(wanted, "," + s + ",") >= 0) Table.deleteRows(i, i, table);
	}
	Table.update(table);
}

// Give the macro recorder (when it is open) the line for this command with the options
// `opts`, written from `opts` itself: ImageJ's dialogs turn their own recording on only
// after they have closed, so on a busy machine what they recorded can be nothing.
function gdRecord(opts) {
	call("ij.plugin.frame.Recorder.disableCommandRecording");
	if (call("ij.plugin.frame.Recorder.getInstance") == "null") return;
	while (endsWith(opts, " ")) opts = substring(opts, 0, lengthOf(opts) - 1);
	prefix = "run(";
	if (call("ij.plugin.frame.Recorder.scriptMode") == "true") prefix = "IJ.run(";
	call("ij.plugin.frame.Recorder.recordString", prefix + gdQuoted(GD_COMMAND) + ", "
		+ gdQuoted(opts) + ");\n");
}

// `text` as a quoted string for a recorded macro line (\\ and " escaped).
function gdQuoted(text) {
	q = "";
	for (i = 0; i < lengthOf(text); i++) {
		c = substring(text, i, i + 1);
		if (c == "\\" || c == "\"") q = q + "\\";
		q = q + c;
	}
	return "\"" + q + "\"";
}

// Open a RoiSet into the ROI Manager without the macro recorder writing its (temporary) path:
// ImageJ records roiManager("Open", path) from a menu-run macro, but not a file opened by
// IJ.open(path) (used while the recorder is open; it would ask before adding to ROIs already
// there). In batch mode without the ROI Manager window the macro's own hidden ROI Manager is
// only reachable through roiManager().
function gdOpenRois(path) {
	recording = false;
	if (call("ij.plugin.frame.Recorder.getInstance") != "null") recording = true;
	if (recording && isOpen("ROI Manager") && roiManager("count") == 0)
		call("ij.IJ.open", path);
	else
		roiManager("Open", path);
}

// gdCall in the background: Esc can stop it. While the golddigger program works in `out`
// this loop shows its progress and touches out/heartbeat; when Esc aborts the macro the
// heartbeat stops, and the program stops too, adds nothing and removes `out`. Returns what
// the program printed (its status line).
function gdRun(what, image, roi, rois, out, opts, slices, stackSize, current, unit, name,
		groups) {
	started = gdCallDetached(what, image, roi, rois, out, opts, slices, stackSize, current,
		unit, name, groups);
	if (indexOf(started, "GOLDDIGGER STARTED") < 0) return started;
	while (!File.exists(out + "done")) {
		if (!File.isDirectory(out))  // the program took this macro for gone and cleaned up
			return "GOLDDIGGER ERROR stopped: ImageJ did not answer the golddigger program; "
				+ "run the command again";
		File.saveString("" + getTime(), out + "heartbeat");
		if (File.exists(out + "stderr.txt")) {  // a program that died before its status line
			err = File.openAsString(out + "stderr.txt");
			if (indexOf(err, "Traceback (most recent call last)") >= 0)
				return "GOLDDIGGER ERROR the golddigger program failed: "
					+ replace(substring(err, maxOf(0, lengthOf(err) - 300)), "\n", " ");
		}
		if (File.exists(out + "progress")) {
			p = split(File.openAsString(out + "progress"));
			if (p.length == 2) showProgress(parseInt(p[0]), parseInt(p[1]));
		}
		wait(100);
	}
	return File.openAsString(out + "status.txt");
}

// ---- Detect Gold's Preview ---------------------------------------------------------------
// An ImageJ macro dialog has no listener for its fields, and Cancel in it ends the macro at
// once. So Detect Gold's dialog is shown by a second run of the command's own file
// (runMacro returns "[aborted]" when it is cancelled), in a loop: OK with Preview ticked
// shows the particles of the dialog's settings in the image's overlay (the current slice,
// inside the region) and the dialog again, with those settings and the counts; OK with
// Preview unticked runs the command; Cancel ends it. The overlay is given back as it was
// either way. The class maps are computed once per dialog: `golddigger imagej
// --call=preview` keeps the candidates in the preview's temporary folder, and a new
// threshold or class list only re-filters them.
var GD_DIALOG_RUN = "gold-digger-dialog:";

// The dialog run (argument: GD_DIALOG_RUN, the current options, a newline, the message).
function gdDialogRun(arg) {
	rest = substring(arg, lengthOf(GD_DIALOG_RUN));
	k = indexOf(rest, "\n");
	s = gdDialog(substring(rest, 0, k), substring(rest, k + 1), true);
	return s;  // (return f() takes f's value for a number)
}

// Detect Gold's options from its dialog, with Preview.
function gdAskWithPreview() {
	me = getInfo("macro.filepath");
	n0 = Overlay.size;
	current = "";
	message = "Tick Preview and press OK to see the particles of these settings on the "
		+ "image;\nuntick it and press OK to run Detect Gold.";
	tmp = "";
	answer = "[aborted]";
	previewing = true;
	while (previewing) {
		answer = runMacro(me, GD_DIALOG_RUN + current + "\n" + message);
		gdClearPreview(n0);
		previewing = false;
		if (answer != "[aborted]") previewing = gdFlag(answer, "preview");
		if (previewing) {
			if (tmp == "") tmp = gdTempDir();
			current = answer;
			message = gdPreview(tmp, answer);
		}
	}
	if (tmp != "") gdCleanup(tmp);
	if (answer == "[aborted]") exit;  // Cancel: nothing more to do
	return answer;
}

// Show the particles of the options `opts` on the current slice in the image's overlay;
// returns the message for the dialog.
function gdPreview(tmp, opts) {
	id = getImageID();
	title = getTitle();
	cur = getSliceNumber();
	region = gdValue(opts, "region", "selection");
	if (region == "selection" && selectionType() >= 0 && !gdIsArea(selectionType()))
		return "No preview: " + title + " has a line or point selection, but Detect Gold "
			+ "counts inside an area selection.";
	wasBatch = is("Batch Mode");
	setBatchMode(true);
	hadSel = selectionType() >= 0;
	if (hadSel) gdKeepSelection(tmp);
	roiFile = gdSaveRegion(region, tmp);
	selectImage(id);
	setSlice(cur);
	if (hadSel) gdRestoreSelection(tmp);
	else run("Select None");
	// the current plane, saved once: the candidates computed from it are reused
	if (!File.exists(tmp + "image.tif")) map = gdSaveImage(tmp, false);
	setBatchMode(wasBatch);
	showStatus("Gold Digger: preview of " + title + "...");
	out = gdCall("preview", tmp + "image.tif", roiFile, "", tmp, opts, "" + (cur - 1),
		nSlices, -1, gdUnit(), title, 0);
	status = gdStatus(out);
	if (startsWith(status, "GOLDDIGGER ERROR")) return "No preview: " + substring(status, 17);
	gdDrawPreview(tmp + "preview.csv", tmp);
	showStatus("Gold Digger preview: " + gdField(status, "particles") + " particles");
	return File.openAsString(tmp + "preview.txt");
}

// Add the ROIs listed in a preview.csv (shape,x,y,size,colour) to the image's overlay.
function gdDrawPreview(path, tmp) {
	if (!File.exists(path)) return;
	lines = split(File.openAsString(path), "\n");
	wasBatch = is("Batch Mode");
	setBatchMode(true);
	hadSel = selectionType() >= 0;
	if (hadSel) gdKeepSelection(tmp);
	for (i = 1; i < lines.length; i++) {
		c = split(lines[i], ",");
		if (c.length < 5) continue;
		if (c[0] == "point") {
			makePoint(parseFloat(c[1]), parseFloat(c[2]));
		} else {
			makeOval(parseFloat(c[1]), parseFloat(c[2]), parseFloat(c[3]), parseFloat(c[3]));
			Roi.setUnscalableStrokeWidth(GD_STROKE_WIDTH);
		}
		Roi.setStrokeColor(c[4]);
		Roi.setName("Gold Digger preview");
		Overlay.addSelection;
	}
	run("Select None");
	if (hadSel) gdRestoreSelection(tmp);
	setBatchMode(wasBatch);
}

// Take the preview off: the overlay as it was when it had `n0` elements.
function gdClearPreview(n0) {
	if (Overlay.size <= n0) return;
	for (i = Overlay.size - 1; i >= n0; i--) Overlay.removeSelection(i);
	if (n0 == 0) Overlay.remove;
}

// ---- Result windows --------------------------------------------------------------------
// "|title|title|" of the result windows open now (see gdPlaceWindows).
function gdOpenWindows() {
	titles = newArray("Gold Digger Results", "Gold Digger Summary", "Log", "Results",
		"ROI Manager");
	s = "|";
	for (i = 0; i < titles.length; i++)
		if (isOpen(titles[i])) s = s + titles[i] + "|";
	return s;
}

// The screen and the current image window (x, y, width, height), for the program's layout.
function gdLayoutArg() {
	getLocationAndSize(x, y, w, h);
	return "" + screenWidth + "," + screenHeight + "," + x + "," + y + "," + w + "," + h;
}

// Put the result windows opened by this command (not in `before`, from gdOpenWindows)
// where the program's layout.txt says (golddigger.imagej.layout: beside the image, not over
// it or each other); windows that were open already stay where the user put them.
function gdPlaceWindows(path, before) {
	if (!File.exists(path)) return;
	lines = split(File.openAsString(path), "\n");
	for (i = 0; i < lines.length; i++) {
		c = split(lines[i], "\t");
		if (c.length < 5) continue;
		if (!isOpen(c[0]) || indexOf(before, "|" + c[0] + "|") >= 0) continue;
		if (c[0] == "ROI Manager" || c[0] == "Log") {
			selectWindow(c[0]);
			setLocation(parseInt(c[1]), parseInt(c[2]));
		} else {
			Table.setLocationAndSize(parseInt(c[1]), parseInt(c[2]), parseInt(c[3]),
				parseInt(c[4]), c[0]);
		}
	}
}

