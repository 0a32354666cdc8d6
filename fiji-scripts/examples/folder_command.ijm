// Gold Digger example: the same as batch_folder.ijm with one command. Detect Gold in Folder
// reads each image's membrane outline from <name>_region.roi (or <name>.roi, <name>.zip,
// <name>_RoiSet.zip ...) beside it and writes <name>.csv, <name>_RoiSet.zip and
// <name>_summary.csv per image and summary.csv in the output folder.
// Stop at once, with a message on the terminal, when ImageJ does not have the Gold Digger
// commands (otherwise run() would wait on an "Unrecognized command" dialog that nobody sees
// in a batch run). "java -jar ij.jar" only finds them with -ijpath ~/.imagej.
List.setCommands;
if (List.get("Detect Gold in Folder") == "")
	exit("Gold Digger: ImageJ has no Plugins > Gold Digger > Detect Gold in Folder. Install the commands "
		+ "(golddigger install-fiji ~/.imagej) and start ImageJ with that folder: "
		+ "java -jar ij.jar -ijpath ~/.imagej -batch ..., /usr/bin/imagej -b ..., or "
		+ "golddigger imagej --batch --macro ...");
List.clear();
input = getArgument();
if (input == "") input = getDirectory("Choose a folder of images");
if (!endsWith(input, File.separator)) input = input + File.separator;
run("Detect Gold in Folder", "input=[" + input + "] output=[" + input + "golddigger]");
