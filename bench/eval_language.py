"""Measure language detectors on the extraction dev pages: accuracy and speed.

Reads ../shared/eval/extraction-dev (evaluation only; nothing here ships). Each page's
text is what `digest.collect.extract.extract_page` returns; the true language of each
page was set by reading its marked-up body (the page's own <html lang> is wrong on 3 of
the 80: two English Business Insider pages say "de", a German blog says "en").
Prints, per detector: accuracy on the full text, on the first 120 characters and on
the title, the time per call, the import/first-call cost and the peak memory.

    python bench/eval_language.py [py3langid|lingua-low|lingua-high|digest ...]
"""

from __future__ import annotations

import gzip
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

from digest.collect.extract import extract_page
from digest.errors import ExtractError

DEV = Path(__file__).resolve().parents[2] / "shared" / "eval" / "extraction-dev"
# Read off the human-marked bodies; every page not listed is English.
TRUTH = {
    "aeb-9da36ae4714b": "ko",
    "aeb-b3c19dd5f061": "pt",
    "aeb-b6fb53e9fb04": "it",
    "aeb-ba07d1e64775": "de",
    "aeb-c4a3637c6696": "ru",
    "aeb-c82b3d1d540b": "ru",
    "aeb-cc03ddb5ef7d": "pt",
    "aeb-f6ac15a4d985": "pt",
    "aeb-f105de6e63ca": "ja",
    "aeb-ff0f958ade71": "ru",
}


PAGE_LANGUAGE: dict[str, str | None] = {}  # what extract_page decided (declared + text)


def load() -> list[tuple[str, str, str, str]]:
    """Return (id, true language, text, title) for every page that extracts."""
    out = []
    for line in (DEV / "truth.jsonl").read_text().splitlines():
        obj = json.loads(line)
        html = gzip.decompress((DEV / "pages" / f"{obj['id']}.html.gz").read_bytes())
        try:
            page = extract_page(html, obj["url"])
        except ExtractError:
            page = None
        PAGE_LANGUAGE[obj["id"]] = page.language if page else None
        text = page.text if page else obj["body"]
        title = (page.title if page else None) or text[:80]
        out.append((obj["id"], TRUTH.get(obj["id"], "en"), text, title))
    return out


def make(name: str) -> Callable[[str], str]:
    """Return a text → ISO 639-1 function for detector `name`."""
    if name == "py3langid":
        import py3langid

        return lambda t: str(py3langid.classify(t)[0])
    if name.startswith("lingua"):
        from lingua import LanguageDetectorBuilder

        builder = LanguageDetectorBuilder.from_all_languages()
        if name == "lingua-low":
            builder = builder.with_low_accuracy_mode()
        det = builder.build()

        def lingua(t: str) -> str:
            lang = det.detect_language_of(t)
            return lang.iso_code_639_1.name.lower() if lang else "??"

        return lingua
    if name == "digest":
        from digest.text.language import detect_language

        return lambda t: detect_language(t) or "??"
    raise SystemExit(f"unknown detector {name}")


def main(names: list[str]) -> None:
    pages = load()
    non_en = sum(1 for _, lang, _, _ in pages if lang != "en")
    print(f"{len(pages)} pages, {non_en} not English (figures are noisy: shared 2-core machine)")
    right = sum(1 for i, lang, _, _ in pages if PAGE_LANGUAGE[i] == lang and lang == "en")
    other = sum(1 for i, lang, _, _ in pages if PAGE_LANGUAGE[i] == lang and lang != "en")
    wrong = [
        f"{i}:{lang}->{PAGE_LANGUAGE[i]}" for i, lang, _, _ in pages if PAGE_LANGUAGE[i] != lang
    ]
    print(
        f"extract_page().language (declared, overruled by the text): en {right}/"
        f"{len(pages) - non_en}  other {other}/{non_en}  wrong: {' '.join(wrong)}"
    )
    for name in names:
        started = time.perf_counter()
        detect = make(name)
        detect("Ein kurzer Satz, damit das Modell geladen ist.")
        setup = time.perf_counter() - started
        for label, cut in (("full text", None), ("first 120 chars", 120), ("title", 0)):
            right = {"en": 0, "other": 0}
            wrong = []
            started = time.perf_counter()
            for ident, lang, text, title in pages:
                sample = title if cut == 0 else text[:cut] if cut else text
                got = detect(sample)
                if got == lang:
                    right["en" if lang == "en" else "other"] += 1
                else:
                    wrong.append(f"{ident}:{lang}->{got}")
            per = (time.perf_counter() - started) / len(pages) * 1000
            print(
                f"{name:12} {label:16} en {right['en']}/{len(pages) - non_en}"
                f"  other {right['other']}/{non_en}  {per:6.2f} ms/page  wrong: {' '.join(wrong)}"
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{name:12} setup+first call {setup:.2f} s, peak RSS so far {peak:.0f} MB")


if __name__ == "__main__":
    main(sys.argv[1:] or ["py3langid", "lingua-low", "lingua-high"])
