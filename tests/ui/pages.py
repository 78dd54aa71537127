"""What a user does on UCC's pages, in Selenium terms (the ``data-test`` hooks of Splunk's React UI)."""

from __future__ import annotations

from typing import Dict, List, Optional

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from .browser import Browser

DIALOG = "[role='dialog']"


class Form:
    """The fields of a dialog or of a settings tab (the last visible element matching ``root_css``)."""

    def __init__(self, browser: Browser, root_css: str) -> None:
        self.browser = browser
        self.root_css = root_css

    @property
    def element(self) -> WebElement:
        roots = self.browser.visible(self.root_css)
        assert roots, f"nothing visible matches {self.root_css}"
        return roots[-1]

    def group(self, field: str) -> WebElement:
        return self.element.find_element(By.CSS_SELECTOR, f"[data-test='control-group'][data-name='{field}']")

    def visible_fields(self) -> List[str]:
        return [group.get_attribute("data-name") for group in
                self.element.find_elements(By.CSS_SELECTOR, "[data-test='control-group']") if group.is_displayed()]

    def value(self, field: str) -> str:
        control = self.group(field).find_element(By.CSS_SELECTOR, "[data-test-value]")
        return control.get_attribute("data-test-value") or ""

    def set_text(self, field: str, value: str) -> None:
        box = self.group(field).find_element(By.CSS_SELECTOR, "input, textarea")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        if value:
            box.send_keys(value)
        # Encrypted fields carry no data-test-value: read the input itself.
        self.browser.wait(lambda: box.get_attribute("value") == value, 5, f"{field} = {value!r}")

    def select(self, field: str, value: str) -> None:
        """Pick ``value`` (the option's value, not its label) in a single-select."""
        popover = self._open_select(field)
        option_css = f"#{popover} [data-test='option'][data-test-value='{value}']"
        self.browser.click(self.browser.wait(lambda: self.browser.visible(option_css), 10,
                                             f"option {value} of {field}")[0])
        self.browser.wait(lambda: self.value(field) == value, 5, f"{field} = {value}")
        self.browser.wait(lambda: not self.browser.visible(f"#{popover} [data-test='option']"), 5,
                          f"the options of {field} to close")

    def options(self, field: str) -> List[str]:
        """The values a single-select offers (opens and closes it)."""
        popover = self._open_select(field)
        options = self.browser.wait(lambda: self.browser.visible(f"#{popover} [data-test='option']"), 10,
                                    f"options of {field}")
        values = [option.get_attribute("data-test-value") for option in options]
        self.browser.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
        self.browser.wait(lambda: not self.browser.visible(f"#{popover} [data-test='option']"), 5,
                          f"the options of {field} to close")
        return values

    def _open_select(self, field: str) -> str:
        """Open a single-select once its options have loaded (``referenceName`` ones come from REST); returns the
        id of its popover."""
        css = "[data-test='select'][data-test-loading='false']"
        select = self.browser.wait(lambda: self.group(field).find_elements(By.CSS_SELECTOR, css), 20,
                                   f"the options of {field} to load")[0]
        self.browser.click(select)
        return select.get_attribute("data-test-popover-id")

    def set_combo(self, field: str, value: str) -> None:
        box = self.group(field).find_element(By.CSS_SELECTOR, "input")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        box.send_keys(value)
        option_css = f"[data-test='option'][data-test-value='{value}']"
        self.browser.click(self.browser.wait(lambda: self.browser.visible(option_css), 10, f"option {value} of {field}")[0])
        self.browser.wait(lambda: self.value(field) == value, 5, f"{field} = {value}")

    def set_checkbox(self, field: str, on: bool) -> None:
        toggle = self.group(field).find_element(By.CSS_SELECTOR, "[data-test='toggle']")
        if (toggle.get_attribute("aria-checked") == "true") != on:
            self.browser.click(toggle)

    def fill(self, values: Dict[str, object]) -> None:
        """Text fields from strings, checkboxes from booleans."""
        for field, value in values.items():
            if isinstance(value, bool):
                self.set_checkbox(field, value)
            else:
                self.set_text(field, str(value))

    def button(self, label: str, timeout: float = 15.0) -> WebElement:
        """The button labelled ``label`` (a Save button reads "Saving..." until the last save is answered)."""
        def find() -> List[WebElement]:
            # A settings tab's Save button sits below its form, outside the form's element.
            for scope in (self.element, self.browser.driver):
                found = [b for b in scope.find_elements(By.CSS_SELECTOR, "button")
                         if b.is_displayed() and b.text.strip() == label]
                if found:
                    return found
            return []
        return self.browser.wait(find, timeout, f"a {label!r} button in {self.root_css} or on the page")[0]

    def errors(self) -> List[str]:
        """Messages shown: the form's error and the field messages."""
        return [element.text for element in
                self.element.find_elements(By.CSS_SELECTOR, "[data-test='message'], [role='alert']")
                if element.is_displayed() and element.text.strip()]

    def wait_error(self, timeout: float = 30.0) -> str:
        return "\n".join(self.browser.wait(self.errors, timeout, f"an error in {self.root_css}"))


class Dialog(Form):
    """The open Add/Edit/Clone dialog of a table tab or of the inputs page."""

    def __init__(self, browser: Browser) -> None:
        super().__init__(browser, DIALOG)

    def title(self) -> str:
        return self.element.find_element(By.CSS_SELECTOR, "[data-test='title']").text

    def scroll_to_top(self) -> None:
        body = self.element.find_element(By.CSS_SELECTOR, "[data-test='body']")
        self.browser.driver.execute_script("arguments[0].scrollTop = 0;", body)

    def submit(self) -> None:
        self.browser.click(self.element.find_elements(By.CSS_SELECTOR, "[data-test='footer'] button")[-1])

    def wait_closed(self, timeout: float = 30.0) -> None:
        try:
            self.browser.wait(lambda: not self.browser.visible(DIALOG), timeout, "the dialog to close")
        except AssertionError as err:
            raise AssertionError(f"{err}; the dialog shows: {self.errors()}") from None


class UccPage:
    """A UCC page (configuration or inputs) in the stand-in."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.browser = browser
        self.url = url

    def open(self) -> "UccPage":
        self.browser.open(self.url)
        self.browser.wait(lambda: self.browser.visible("[data-test='footer'], [role='tab'], table"), 30,
                          f"{self.url} to render")
        return self

    def tab(self, title: str) -> None:
        tabs = self.browser.wait(lambda: [t for t in self.browser.visible("[role='tab']") if t.text == title], 20,
                                 f"tab {title}")
        self.browser.click(tabs[0])
        self.browser.wait(lambda: tabs[0].get_attribute("aria-selected") == "true", 10, f"tab {title} selected")

    def click_button(self, label: str) -> None:
        buttons = self.browser.wait(
            lambda: [b for b in self.browser.visible("button") if b.text.strip() == label], 20, f"button {label}")
        self.browser.click(buttons[0])

    def add(self, label: str = "Add") -> Dialog:
        self.click_button(label)
        self.browser.wait(lambda: self.browser.visible(DIALOG), 10, "the dialog")
        return Dialog(self.browser)

    def row(self, name: str) -> Optional[WebElement]:
        rows = self.browser.visible(f"tr[data-test='row'][aria-label='row-{name}']")
        return rows[0] if rows else None

    def wait_row(self, name: str, present: bool = True, timeout: float = 20.0) -> Optional[WebElement]:
        self.browser.wait(lambda: (self.row(name) is not None) == present, timeout,
                          f"row {name} to {'appear' if present else 'go'}")
        return self.row(name)

    def cell(self, name: str, column: str) -> str:
        row = self.wait_row(name)
        assert row is not None
        return row.find_element(By.CSS_SELECTOR, f"td[data-column='{column}']").text

    def row_action(self, name: str, action: str) -> Dialog:
        """``edit``, ``clone`` or ``delete`` on a row; returns the dialog it opens."""
        row = self.wait_row(name)
        assert row is not None
        self.browser.click(row.find_element(By.CSS_SELECTOR, f"[data-testid='{action}-button']"))
        self.browser.wait(lambda: self.browser.visible(DIALOG), 10, f"the {action} dialog")
        return Dialog(self.browser)

    def delete(self, name: str) -> None:
        dialog = self.row_action(name, "delete")
        self.browser.click(dialog.button("Delete"))
        dialog.wait_closed()
        self.wait_row(name, present=False)

    def settings(self, tab_name: str) -> Form:
        """The form of a settings tab (one without a table), e.g. ``proxy``."""
        return Form(self.browser, f"#{tab_name}Tab")
