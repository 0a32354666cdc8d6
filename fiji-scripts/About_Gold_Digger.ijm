// Gold Digger > About Gold Digger
//
// The version, the default model, what to cite (Jerez et al., Scientific Reports 2021, and
// Gold Digger) and where the documentation is. From the menu: a message window; from a
// macro, run("About Gold Digger"), or in batch mode: the same lines in the Log, so a batch
// run can record which Gold Digger made its results.
//@GENERATED@

if (gdFromMacro() || is("Batch Mode")) {
	print(GD_ABOUT_TEXT);
} else {
	showMessage("About Gold Digger", GD_ABOUT_HTML);
}
