"""A generated section of a Markdown file (BENCHMARKS.md): replaced between its markers, written
aside and renamed, the rest of the file left alone."""
import os


def write_section(path, begin, end, title, body):
    """Replace the block between the `begin` and `end` marker lines in path with a `## title`
    section holding body, or append it (to "# Benchmarks" in a new file)."""
    block = "%s\n## %s\n\n%s\n%s\n" % (begin, title, body.rstrip("\n"), end)
    text = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end) + 1:]
    else:
        text = (text or "# Benchmarks\n\n").rstrip("\n") + "\n\n" + block
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
