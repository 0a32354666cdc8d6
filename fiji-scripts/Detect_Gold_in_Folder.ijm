// Gold Digger > Detect Gold in Folder
//
// Finds immunogold particles in every image of a folder (TIFF, PNG, JPEG; every slice of
// stacks). An image's membrane region is read from an ImageJ ROI file beside it, if there
// is one: <name>_region.roi/.zip, <name>_membrane.roi/.zip, <name>.roi, <name>.zip,
// <name>_RoiSet.zip or RoiSet_<name>.zip that holds an area outline (a file of particles
// only is never a region; otherwise the whole image), clipped to the image.
// Writes, per image, <name>.csv (x,y,diameter_nm,score,slice in pixels),
// <name>_RoiSet.zip and <name>_summary.csv in the output folder (default: a folder
// "golddigger" inside the input folder), and summary.csv for all images; shows the summary
// in the table "Gold Digger Summary". Progress is shown in ImageJ's status bar.
//
// In a macro:
//   run("Detect Gold in Folder", "input=[/data/replicas] output=[/data/results] overwrite");
// Options: input, output, model, threshold, classes, shape (ovals|points), pixel_size (for
// images without calibration), overwrite, resume, overlay, sizing, tta, precision. The
// summary has the columns of `golddigger detect`'s summary.csv.
//@GENERATED@

requires("1.52t");
opts = gdAsk();
input = gdValue(opts, "input", "");
if (input == "") {
	if (gdFromMacro()) exit("Gold Digger: Detect Gold in Folder needs input=[folder]");
	input = getDirectory("Choose a folder of images");
}
if (!endsWith(input, File.separator)) input = input + File.separator;
if (!File.isDirectory(input)) exit("Gold Digger: " + input + " is not a folder");
output = gdValue(opts, "output", "");
if (output == "") output = input + "golddigger" + File.separator;
if (!endsWith(output, File.separator)) output = output + File.separator;
File.makeDirectory(output);
if (!File.isDirectory(output)) exit("Gold Digger: cannot create the folder " + output);

list = getFileList(input);
images = newArray(0);
for (i = 0; i < list.length; i++) {
	low = toLowerCase(list[i]);
	if (startsWith(low, ".")) continue;
	if (endsWith(low, ".tif") || endsWith(low, ".tiff") || endsWith(low, ".png")
		|| endsWith(low, ".jpg") || endsWith(low, ".jpeg"))
		images = Array.concat(images, list[i]);
}
if (images.length == 0) exit("Gold Digger: no images (TIFF, PNG, JPEG) in " + input);

total = 0;
failed = "";
for (i = 0; i < images.length; i++) {
	showProgress(i, images.length);
	showStatus("Gold Digger: " + (i + 1) + "/" + images.length + " " + images[i]);
	out = gdCall("folder-image", input + images[i], "", "", output, opts, "", 1, -1, "", "", 0);
	status = gdStatus(out);
	if (startsWith(status, "GOLDDIGGER ERROR")) {
		failed = failed + substring(status, 17) + "\n";
		print("Gold Digger: " + substring(status, 17));
	} else {
		total = total + parseInt(gdField(status, "particles"));
	}
}
showProgress(1);
status = gdCheck(gdStatus(gdCall("folder-summary", "", "", "", output, "", "", 1, -1, "",
	"", 0)), "");
if (isOpen("Gold Digger Summary")) close("Gold Digger Summary");
gdAppendSummary(output + "summary.csv");
msg = "Gold Digger: " + total + " particles in " + images.length + " image(s); results in "
	+ output;
if (failed != "") msg = msg + " (some failed: see the Log window)";
showStatus(msg);
print(msg);
