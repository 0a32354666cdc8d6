// Gold Digger example: the same as batch_folder.ijm with one command. Detect Gold in Folder
// reads each image's membrane outline from <name>_region.roi (or <name>.roi, <name>.zip,
// <name>_RoiSet.zip ...) beside it and writes <name>.csv, <name>_RoiSet.zip and
// <name>_summary.csv per image and summary.csv in the output folder.
input = getArgument();
if (input == "") input = getDirectory("Choose a folder of images");
if (!endsWith(input, File.separator)) input = input + File.separator;
run("Detect Gold in Folder", "input=[" + input + "] output=[" + input + "golddigger]");
