"""A tiny Tk app for the desktop template: type a note, press Save, it lands in a file.

    python notes_app.py OUTPUT_FILE
"""

from __future__ import annotations

import sys
import tkinter as tk
from pathlib import Path


def main(output: Path) -> None:
    root = tk.Tk()
    root.title("Notes")
    root.geometry("520x160+120+120")
    tk.Label(root, text="Note:", font=("TkDefaultFont", 14)).pack(anchor="w", padx=10, pady=(10, 0))
    entry = tk.Entry(root, font=("TkFixedFont", 16))
    entry.pack(fill="x", padx=10)
    status = tk.Label(root, text="not saved", font=("TkDefaultFont", 12))

    def save(_event: object = None) -> None:
        output.write_text(entry.get())
        status.config(text=f"saved {len(entry.get())} characters")

    tk.Button(root, text="Save", command=save, font=("TkDefaultFont", 14)).pack(pady=8)
    status.pack()
    root.bind("<Return>", save)
    entry.focus_set()
    root.mainloop()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
