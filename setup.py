"""Which files go into the wheel; everything else about the project is in pyproject.toml.

Besides the code (proxy/, sitegen/), the programs need files that live at the top of the
checkout: config.yaml (the example), site_templates/ (the report's templates, CSS, JS and the
vendored Vega bundle) and datasette/ (metadata and plugins). They ship as the data-only
package `shin_gateway`, the checkout's top level under the project's name, which
proxy/resources.py finds at run time in a wheel and in an editable install alike. This needs
code rather than pyproject.toml's `packages.find`, which cannot rename a folder into a package
(a top-level `datasette/` in site-packages would land inside Datasette's own package).
"""

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

DATA_PACKAGE = "shin_gateway"
DATA_FOLDERS = find_namespace_packages(include=["site_templates*", "datasette*"], exclude=["*.__pycache__"])


class BuildPy(build_py):
    def find_package_modules(self, package, package_dir):
        # shin_gateway is the checkout's top level: a .py there (this file) is not part of it.
        if package == DATA_PACKAGE:
            return []
        return super().find_package_modules(package, package_dir)


setup(
    packages=[
        *find_namespace_packages(include=["proxy*", "sitegen*"], exclude=["*.__pycache__"]),
        DATA_PACKAGE,
        *(f"{DATA_PACKAGE}.{folder}" for folder in DATA_FOLDERS),
    ],
    package_dir={DATA_PACKAGE: "."},
    package_data={
        "": ["*.sql"],  # every package: the numbered migrations, any SQL kept in files
        DATA_PACKAGE: ["config.yaml"],
        **{f"{DATA_PACKAGE}.{folder}": ["*"] for folder in DATA_FOLDERS},
    },
    cmdclass={"build_py": BuildPy},
)
