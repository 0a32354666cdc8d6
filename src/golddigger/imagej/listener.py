"""Serve the Gold Digger menu commands from Python: an ``ij.CommandListener``.

ImageJ 1's ``ij.Executer`` offers every command, by name, to its command listeners before
running it. Ours takes the Gold Digger commands (returning None, so the installed macro
body never runs) and lets every other command through. It sees menu clicks (on a
new thread, no macro options), ``IJ.doCommand`` and ``run("Detect Gold", "...")`` in macros
(on the macro's thread, with ``ij.Macro.getOptions()`` set); the macro goes on after the
command and sees the ROIs and tables it made.

No network port is opened: everything stays in this process.
"""

from __future__ import annotations

import logging

from golddigger.imagej.options import ABOUT, COMMANDS, MENU_LAYOUT

__all__ = ["MENU", "ensure_menus", "install_listener"]

logger = logging.getLogger(__name__)

#: The submenu of Plugins the commands live in.
MENU = "Gold Digger"

_LISTENER = None


def install_listener(session):
    """Register a command listener that runs Gold Digger commands in ``session``
    (`golddigger.imagej.commands.Session`); returns it. Registering twice is a no-op."""
    global _LISTENER
    if _LISTENER is not None:
        _LISTENER.session = session
        return _LISTENER
    from ij import Executer, Macro
    from java.lang import Thread
    from jpype import JImplements, JOverride

    @JImplements("ij.CommandListener")
    class GoldDiggerListener:
        def __init__(self, session):
            self.session = session

        @JOverride
        def commandExecuting(self, command):
            name = str(command)
            if name not in COMMANDS and name != ABOUT:
                return command
            options = Macro.getOptions()
            thread = str(Thread.currentThread().getName())
            # run(...) in a macro renames its thread "Run$_..."; a menu click runs on a
            # new thread named after the command.
            from_macro = thread.startswith("Run$_") or options is not None
            logger.debug("%s (thread %s, options %r)", name, thread, options)
            try:
                self.session.run(name, None if options is None else str(options), from_macro)
            except BaseException:  # never propagate into ImageJ's executer
                logger.exception("%s failed", name)
            return None

    _LISTENER = GoldDiggerListener(session)
    Executer.addCommandListener(_LISTENER)
    return _LISTENER


def ensure_menus(ij_instance=None) -> list[str]:
    """Add Plugins > Gold Digger items for the commands ImageJ does not know yet (when the
    ``.ijm`` files were not installed in its plugins folder); returns the names added.

    The items only carry the command name: the listener runs them. In a new submenu they
    come in `MENU_LAYOUT`'s order, with its separators.
    """
    from ij import IJ, Menus

    ij = ij_instance or IJ.getInstance()
    commands = Menus.getCommands()
    missing = [name for name in MENU_LAYOUT if name != "-"
               and (commands is None or commands.get(name) is None)]
    if not missing or ij is None:
        return []
    from java.awt import Menu, MenuItem

    bar = Menus.getMenuBar()
    plugins = None
    for i in range(int(bar.getMenuCount())):
        if str(bar.getMenu(i).getLabel()) == "Plugins":
            plugins = bar.getMenu(i)
    if plugins is None:
        return []
    sub = None
    for i in range(int(plugins.getItemCount())):
        item = plugins.getItem(i)
        if str(item.getLabel()) == MENU and isinstance(item, Menu):
            sub = item
    if sub is None:
        sub = Menu(MENU)
        plugins.add(sub)
    fresh = sub.getItemCount() == 0
    for name in MENU_LAYOUT:
        if name == "-":
            if fresh and sub.getItemCount():
                sub.addSeparator()
            continue
        if name not in missing:
            continue
        item = MenuItem(name)
        item.addActionListener(ij)
        sub.add(item)
        # a command table entry lets run("...") in macros and the command finder see it
        commands.put(name, "ij.plugin.Macro_Runner")
    logger.info("added menu items %s", missing)
    return missing
