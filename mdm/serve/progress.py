"""A one-line progress bar on stderr for long inputs (reading many frames, drawing an
animation). Drawn only when stderr is a terminal, so logs and captured output hold
nothing but the results and errors."""

import sys

MIN_ITEMS = 50  # shorter inputs finish too quickly to need a bar
WIDTH = 30


class Progress:
    """`update(done)` redraws `label [#####.....] done/total`; `close()` ends the line."""

    def __init__(self, total, label, stream=None, force=False):
        self.total, self.label = total, label
        self.stream = sys.stderr if stream is None else stream
        terminal = getattr(self.stream, "isatty", lambda: False)()
        self.shown = total >= MIN_ITEMS and (terminal or force)

    def update(self, done):
        if not self.shown:
            return
        filled = int(WIDTH * done / max(self.total, 1))
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] "
                          f"{done}/{self.total}")
        self.stream.flush()

    def close(self):
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
