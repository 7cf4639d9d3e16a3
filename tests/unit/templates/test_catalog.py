"""TemplateCatalog: finding templates in folders, references, reloading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from falsework.errors import NotFoundError
from falsework.templates import TemplateCatalog
from support.templates import WriteTemplate, template_doc


def test_finds_templates_and_ignores_skeletons(
    tmp_path: Path, write_template: WriteTemplate
) -> None:
    skeleton_template = yaml.safe_dump(template_doc("inner"))
    write_template(
        "demo",
        files={
            "skeleton/catalog-info.yaml": "kind: Component\nmetadata: {name: ${{ values.name }}}\n",
            "skeleton/nested/template.yaml": skeleton_template,
        },
    )
    write_template("other", filename="other.yml")
    commented = yaml.safe_dump(template_doc("commented")).replace(
        "kind: Template", "kind: 'Template'  # a comment"
    )
    write_template("commented", commented, filename="commented.yaml")
    write_template("deep", folder="templates/group/sub/deep")
    (tmp_path / "templates" / "notes.yaml").write_text("kind: Component\n")
    (tmp_path / "templates" / ".hidden").mkdir()
    (tmp_path / "templates" / ".hidden" / "template.yaml").write_text(
        yaml.safe_dump(template_doc("hidden"))
    )
    catalog = TemplateCatalog([tmp_path / "templates"])
    assert [t.name for t in catalog.list()] == ["commented", "deep", "demo", "other"]
    assert catalog.problems == []


@pytest.mark.parametrize(
    "ref",
    ["template:default/demo", "default/demo", "demo", "template:demo", "Template:Default/DEMO"],
)
def test_get_accepts_every_reference_form(
    write_template: WriteTemplate, tmp_path: Path, ref: str
) -> None:
    write_template("demo")
    catalog = TemplateCatalog([tmp_path / "templates"])
    assert catalog.get(ref).ref == "template:default/demo"


def test_get_unknown_is_not_found(write_template: WriteTemplate, tmp_path: Path) -> None:
    write_template("demo")
    catalog = TemplateCatalog([tmp_path / "templates"])
    with pytest.raises(NotFoundError, match=r"^Template template:default/nope not found$"):
        catalog.get("template:default/nope")
    with pytest.raises(NotFoundError):
        catalog.get("component:default/demo")
    with pytest.raises(NotFoundError):
        catalog.get("other/demo")


def test_missing_folders_are_fine(tmp_path: Path) -> None:
    assert TemplateCatalog([tmp_path / "nowhere"]).list() == []


def test_earlier_folders_win(tmp_path: Path, write_template: WriteTemplate) -> None:
    first = write_template("dup", folder="a/dup")
    write_template("dup", folder="b/dup")
    catalog = TemplateCatalog([tmp_path / "a", tmp_path / "b"])
    assert catalog.get("dup").path == first.resolve()


def test_broken_files_are_skipped_and_reported(
    tmp_path: Path, write_template: WriteTemplate
) -> None:
    write_template("good")
    write_template("bad", "kind: Template\nmetadata: {name: [\n")
    write_template("nameless", "apiVersion: x\nkind: Template\nmetadata: {}\n")
    catalog = TemplateCatalog([tmp_path / "templates"])
    assert [t.name for t in catalog.list()] == ["good"]
    assert len(catalog.problems) == 2
    assert any("not valid YAML" in p for p in catalog.problems)
    assert any("metadata.name is missing" in p for p in catalog.problems)


def _touch_later(path: Path) -> None:
    # mtime granularity can be coarse: move it forward explicitly
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def test_changes_are_picked_up_without_restart(
    tmp_path: Path, write_template: WriteTemplate
) -> None:
    path = write_template("demo")
    catalog = TemplateCatalog([tmp_path / "templates"], ttl=0)
    assert catalog.get("demo").title == "The demo template"
    generation = catalog.generation

    doc = template_doc("demo")
    doc["metadata"]["title"] = "Edited"
    path.write_text(yaml.safe_dump(doc))
    _touch_later(path)
    assert catalog.get("demo").title == "Edited"
    assert catalog.generation > generation

    write_template("added")
    assert [t.name for t in catalog.list()] == ["added", "demo"]

    path.unlink()
    assert [t.name for t in catalog.list()] == ["added"]
    with pytest.raises(NotFoundError):
        catalog.get("demo")


def test_within_the_ttl_the_last_scan_is_used_until_reload(
    tmp_path: Path, write_template: WriteTemplate
) -> None:
    write_template("demo")
    catalog = TemplateCatalog([tmp_path / "templates"], ttl=3600)
    assert [t.name for t in catalog.list()] == ["demo"]
    write_template("added")
    assert [t.name for t in catalog.list()] == ["demo"]
    catalog.reload()
    assert [t.name for t in catalog.list()] == ["added", "demo"]


def test_unchanged_files_are_not_reparsed(tmp_path: Path, write_template: WriteTemplate) -> None:
    write_template("demo")
    catalog = TemplateCatalog([tmp_path / "templates"], ttl=0)
    first = catalog.get("demo")
    generation = catalog.generation
    assert catalog.get("demo") is first
    assert catalog.generation == generation
