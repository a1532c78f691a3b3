"""Build hook: ship the repository's top-level `templates/` inside the package.

The templates live at the top of the repository (where operators look for them);
a wheel carries them as `digest/render/templates/`, where `digest.render` finds them.
An editable install reads the top-level folder directly and needs no copy.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithTemplates(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest = Path(self.build_lib) / "digest" / "render" / "templates"
        dest.mkdir(parents=True, exist_ok=True)
        for path in sorted(Path(__file__).parent.joinpath("templates").iterdir()):
            if path.is_file():
                shutil.copy2(path, dest / path.name)
        # `digest init` writes the commented config.toml of the repository.
        config = Path(self.build_lib) / "digest" / "config" / "sample.toml"
        shutil.copy2(Path(__file__).parent / "config.toml", config)


setup(cmdclass={"build_py": BuildPyWithTemplates})
