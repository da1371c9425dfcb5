"""``python -m pyekka.config``: print the configuration reference (Markdown)."""

from pyekka.config.reference import reference_markdown

if __name__ == "__main__":
    print(reference_markdown(), end="")
