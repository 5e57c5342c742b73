"""Changed copies of the bundled pathway, made the way a modeler edits it (tests only).

Each function returns the definition's files, ``[(name, bytes)]`` with the BPMN first, ready
for ``engine.deploy`` or ``POST /definitions``.
"""

from __future__ import annotations

from lxml import etree

from engine import bundled

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
NS = {"bpmn": BPMN, "bpmndi": BPMNDI, "camunda": CAMUNDA}


def bundled_files() -> list[tuple[str, bytes]]:
    """The pathway as shipped."""
    return bundled.pathway_files()


def _edit() -> tuple[etree._Element, list[tuple[str, bytes]]]:
    files = bundled_files()
    root = etree.fromstring(files[0][1])
    return root, files


def _files(root: etree._Element, files: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return [(files[0][0], data), *files[1:]]


def _by_id(root: etree._Element, element_id: str) -> etree._Element:
    found = root.xpath("//*[@id=$id]", id=element_id)
    assert found, element_id
    return found[0]


def replaced(old: str, new: str, *, count: int = 1) -> list[tuple[str, bytes]]:
    """The pathway with one piece of its BPMN text replaced (it must be there)."""
    files = bundled_files()
    text = files[0][1].decode()
    assert text.count(old) >= count, old
    return [(files[0][0], text.replace(old, new, count).encode()), *files[1:]]


def two_week_timer_days(days: int) -> list[tuple[str, bytes]]:
    """The pathway with the 2-week referral deadline set to another number of days."""
    return replaced('"P14D"', f'"P{days}D"')


def with_extra_step_before_reassessment() -> list[tuple[str, bytes]]:
    """Version 2 of the example: a questionnaire between the 6-week reminder and the
    reassessment, with one optional whole-number field."""
    root, files = _edit()
    flow = _by_id(root, "flow_reminder6_reassessment")
    process = flow.getparent()
    flow.set("targetRef", "pre_reassessment_questionnaire")
    task = etree.SubElement(process, f"{{{BPMN}}}userTask")
    task.set("id", "pre_reassessment_questionnaire")
    task.set("name", "Pre-reassessment questionnaire")
    task.set(f"{{{CAMUNDA}}}candidateGroups", "coordinator")
    doc = etree.SubElement(task, f"{{{BPMN}}}documentation")
    doc.text = "Ask how the leg pain is now, so that the reassessment starts from it."
    ext = etree.SubElement(task, f"{{{BPMN}}}extensionElements")
    form = etree.SubElement(ext, f"{{{CAMUNDA}}}formData")
    field = etree.SubElement(form, f"{{{CAMUNDA}}}formField")
    field.set("id", "pain_now")
    field.set("label", "Leg pain now (0-10)")
    field.set("type", "long")
    props = etree.SubElement(ext, f"{{{CAMUNDA}}}properties")
    source = etree.SubElement(props, f"{{{CAMUNDA}}}property")
    source.set("name", "pathway.evidence.source")
    source.set("value", "Synthetic test change (not guidance)")
    etree.SubElement(task, f"{{{BPMN}}}incoming").text = "flow_reminder6_reassessment"
    etree.SubElement(task, f"{{{BPMN}}}outgoing").text = "flow_questionnaire_reassessment"
    new_flow = etree.SubElement(process, f"{{{BPMN}}}sequenceFlow")
    new_flow.set("id", "flow_questionnaire_reassessment")
    new_flow.set("sourceRef", "pre_reassessment_questionnaire")
    new_flow.set("targetRef", "six_week_reassessment")
    reassessment = _by_id(root, "six_week_reassessment")
    incoming = reassessment.find(f"{{{BPMN}}}incoming")
    assert incoming is not None
    incoming.text = "flow_questionnaire_reassessment"
    shape = root.xpath("//bpmndi:BPMNShape[@bpmnElement='six_week_reassessment']", namespaces=NS)[0]
    bounds = shape.find(f"{{{DC}}}Bounds")
    x, y = float(bounds.get("x")), float(bounds.get("y"))
    added = etree.SubElement(shape.getparent(), f"{{{BPMNDI}}}BPMNShape")
    added.set("id", "pre_reassessment_questionnaire_di")
    added.set("bpmnElement", "pre_reassessment_questionnaire")
    box = etree.SubElement(added, f"{{{DC}}}Bounds")
    for key, value in (("x", x), ("y", y + 140), ("width", 100.0), ("height", 80.0)):
        box.set(key, str(value))
    edge = etree.SubElement(shape.getparent(), f"{{{BPMNDI}}}BPMNEdge")
    edge.set("id", "flow_questionnaire_reassessment_di")
    edge.set("bpmnElement", "flow_questionnaire_reassessment")
    for px, py in ((x + 50, y + 140), (x + 50, y + 80)):
        point = etree.SubElement(edge, f"{{{DI}}}waypoint")
        point.set("x", str(px))
        point.set("y", str(py))
    return _files(root, files)


def without_step(element_id: str) -> list[tuple[str, bytes]]:
    """The pathway with one step taken out of its flow: its incoming flow goes straight on to
    where its outgoing flow went."""
    root, files = _edit()
    element = _by_id(root, element_id)
    incoming = element.findtext(f"{{{BPMN}}}incoming")
    outgoing = element.findtext(f"{{{BPMN}}}outgoing")
    out_flow = _by_id(root, outgoing)
    target = out_flow.get("targetRef")
    _by_id(root, incoming).set("targetRef", target)
    target_element = _by_id(root, target)
    for ref in target_element.findall(f"{{{BPMN}}}incoming"):
        if ref.text == outgoing:
            ref.text = incoming
    for gone in (element, out_flow):
        gone.getparent().remove(gone)
    for shape in root.xpath(
        "//bpmndi:*[@bpmnElement=$a or @bpmnElement=$b]", namespaces=NS, a=element_id, b=outgoing
    ):
        shape.getparent().remove(shape)
    return _files(root, files)


def with_boundary_timer_on(task_id: str) -> list[tuple[str, bytes]]:
    """The pathway with a non-interrupting 3-day timer on one step (a new deadline that
    notes the step late), laid out beside the step."""
    root, files = _edit()
    task = _by_id(root, task_id)
    process = task.getparent()
    timer_id, end_id, flow_id = f"{task_id}_late", f"{task_id}_late_end", f"flow_{task_id}_late"
    timer = etree.SubElement(process, f"{{{BPMN}}}boundaryEvent")
    for key, value in (
        ("id", timer_id),
        ("name", "Late"),
        ("cancelActivity", "false"),
        ("attachedToRef", task_id),
    ):
        timer.set(key, value)
    etree.SubElement(timer, f"{{{BPMN}}}documentation").text = "Notice a step not done in 3 days."
    ext = etree.SubElement(timer, f"{{{BPMN}}}extensionElements")
    props = etree.SubElement(ext, f"{{{CAMUNDA}}}properties")
    for name, value in (
        ("pathway.evidence.source", "Synthetic test change (not guidance)"),
        ("pathway.deadline", timer_id),
    ):
        prop = etree.SubElement(props, f"{{{CAMUNDA}}}property")
        prop.set("name", name)
        prop.set("value", value)
    etree.SubElement(timer, f"{{{BPMN}}}outgoing").text = flow_id
    definition = etree.SubElement(timer, f"{{{BPMN}}}timerEventDefinition")
    definition.set("id", f"{timer_id}_definition")
    etree.SubElement(definition, f"{{{BPMN}}}timeDuration").text = "P3D"
    end = etree.SubElement(process, f"{{{BPMN}}}endEvent")
    end.set("id", end_id)
    end.set("name", "Late noted")
    etree.SubElement(end, f"{{{BPMN}}}incoming").text = flow_id
    flow = etree.SubElement(process, f"{{{BPMN}}}sequenceFlow")
    for key, value in (("id", flow_id), ("sourceRef", timer_id), ("targetRef", end_id)):
        flow.set(key, value)
    shape = root.xpath("//bpmndi:BPMNShape[@bpmnElement=$t]", namespaces=NS, t=task_id)[0]
    bounds = shape.find(f"{{{DC}}}Bounds")
    x, y = float(bounds.get("x")), float(bounds.get("y"))
    for element, (px, py) in ((timer_id, (x + 60, y + 62)), (end_id, (x + 60, y + 160))):
        added = etree.SubElement(shape.getparent(), f"{{{BPMNDI}}}BPMNShape")
        added.set("id", f"{element}_di")
        added.set("bpmnElement", element)
        box = etree.SubElement(added, f"{{{DC}}}Bounds")
        for key, value in (("x", px), ("y", py), ("width", 36.0), ("height", 36.0)):
            box.set(key, str(value))
    edge = etree.SubElement(shape.getparent(), f"{{{BPMNDI}}}BPMNEdge")
    edge.set("id", f"{flow_id}_di")
    edge.set("bpmnElement", flow_id)
    for px, py in ((x + 78, y + 98), (x + 78, y + 160)):
        point = etree.SubElement(edge, f"{{{DI}}}waypoint")
        point.set("x", str(px))
        point.set("y", str(py))
    return _files(root, files)
