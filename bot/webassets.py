"""Web assets: the chat page's stylesheet and its one browser script (no other file is fetched).

The stylesheet sets every text colour to ≥ 4.5:1 contrast in light and dark mode, a visible focus ring on
every control, and the phone layout (≤ 640 px: header stacked, one-column Browse, full-width bubbles).
The script connects the buttons `render` puts inside answers to the page's hidden action box, keeps the
document language and the chat messages' accessible names in the page's language, scrolls each new reply
so its first line shows, and copies an answer with its citation.
"""

import json

from .uitext import UI

CSS = """
.fb-answer p, .fb-question { margin: 0 0 .6em; }
.fb-text p { margin: 0 0 .8em; line-height: 1.7; }
.fb-text mark { background: #fde68a; color: #1f2937; padding: 0 .1em; border-radius: 2px; }
.fb-matched { font-weight: 600; margin: 0 0 .5em; }
.fb-matched summary { cursor: pointer; }
.fb-full { font-weight: 400; margin: .3em 0 0; }
.fb-message { font-weight: 600; }
.fb-notice { color: var(--body-text-color); font-weight: 600; border-left: 4px solid #b45309; padding-left: .5em; }
.fb-contact { font-weight: 600; }
.fb-label { font-size: .9em; font-style: italic; color: var(--body-text-color); }
.fb-official { margin: .2em 0 .8em; }
.fb-official summary, .fb-browse summary, .fb-citation summary { cursor: pointer; }
.fb-citation { font-size: .9em; color: var(--body-text-color); margin: .4em 0;
               border-top: 1px solid var(--border-color-primary); padding-top: .4em; }
.fb-where, .fb-why { margin: .3em 0 0; }
.fb-related { font-size: .95em; margin: .6em 0 .2em; }
.fb-card { border-left: 3px solid var(--border-color-primary); padding-left: .7em; margin: .6em 0; }
.fb-asks { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: .3em; }
.fb-ask, .fb-pick, .fb-copy, .fb-vote {
  text-align: left; font: inherit; font-size: .9em; cursor: pointer; padding: .3em .6em; min-height: 2.2em;
  border: 1px solid var(--border-color-primary); border-radius: var(--radius-md);
  background: var(--background-fill-primary); color: var(--body-text-color); }
.fb-ask, .fb-pick { color: var(--link-text-color); }
.fb-ask:hover, .fb-pick:hover, .fb-copy:hover, .fb-vote:hover { border-color: var(--color-accent); }
.fb-vote.fb-pressed { border: 2px solid var(--color-accent); font-weight: 700; }
.fb-votes { display: flex; flex-wrap: wrap; align-items: center; gap: .4em; margin-top: .6em; font-size: .95em; }
.fb-copy { margin: .2em 0 .4em; }
.fb-pending p { font-style: italic; }
.fb-status { font-weight: 600; margin: .4em 0; }
button:focus-visible, summary:focus-visible, a:focus-visible, textarea:focus-visible, input:focus-visible,
[role="tab"]:focus-visible, label:has(input:focus-visible) {
  outline: 3px solid #1d4ed8 !important; outline-offset: 2px; }
.dark button:focus-visible, .dark summary:focus-visible, .dark textarea:focus-visible,
.dark label:has(input:focus-visible) { outline-color: #93c5fd !important; }
textarea::placeholder, input::placeholder { color: #595959 !important; opacity: 1 !important; }
.dark textarea::placeholder, .dark input::placeholder { color: #c4c4c4 !important; }
.fb-browse { width: 100%; border-collapse: collapse; }
.fb-browse th, .fb-browse td { text-align: left; vertical-align: top; padding: .4em .6em;
                               border-bottom: 1px solid var(--border-color-primary); }
.fb-browse td.fb-num { white-space: nowrap; }
.fb-browse details .fb-text { margin-top: .5em; }
#fb-header { align-items: center; }
#fb-header h1 { font-size: 1.5em; margin: 0 0 .2em; }
#chat .message-row .message, #chat .message-wrap .message { max-width: 100%; }
[role="tab"].selected { color: #1d4ed8 !important; }
.dark [role="tab"].selected { color: #93c5fd !important; }
footer button, footer a, footer .show-api { color: #4b5563 !important; }
.dark footer button, .dark footer a, .dark footer .show-api { color: #d1d5db !important; }
#chat .icon-button-wrapper.top-panel { display: none; }  /* Gradio's own clear button: the page has one */
@media (max-width: 640px) {
  #fb-header { flex-direction: column !important; align-items: stretch; gap: .3em; }
  #fb-header h1 { font-size: 1.2em; }
  #fb-header p { font-size: .9em; margin: 0; }
  #ui-lang { min-width: 0 !important; padding: 4px 8px !important; }
  #ui-lang [data-testid="block-info"] { position: absolute; width: 1px; height: 1px; overflow: hidden;
                                        clip: rect(0 0 0 0); white-space: nowrap; }
  #ui-lang .wrap { flex-wrap: nowrap; }
  #question-row { flex-wrap: wrap; }
  #question-row > * { min-width: 100% !important; }
  #chat .message-row, #chat .message-row .message, #chat .bot-row .message, #chat .bubble { max-width: 100% !important;
                                                                             width: 100%; margin-left: 0; }
  #chat .avatar-container { display: none; }
  .fb-browse thead { display: none; }
  .fb-browse, .fb-browse tbody, .fb-browse tr, .fb-browse td { display: block; width: 100%; box-sizing: border-box; }
  .fb-browse tr { border-bottom: 1px solid var(--border-color-primary); padding: .3em 0; }
  .fb-browse td { border: none; padding: .15em .3em; }
  .fb-browse td.fb-num, .fb-browse td.fb-sec { display: inline; font-size: .85em; padding-right: .5em; }
}
"""

#: What the script says itself, by page language: the chat message names and the copy confirmation.
_WORDS = {
    "ja": {"you": "あなたの質問", "bot": "ボットの回答", "conversation": "会話", "example": "質問の例",
           "scroll": "最新のメッセージへ移動", "copied": UI["ja"]["copied"]},
    "en": {"you": "Your question", "bot": "Bot's answer", "conversation": "Conversation", "example": "Example question",
           "scroll": "Go to the latest message", "copied": UI["en"]["copied"]},
}

#: Runs once when the page loads (launch(js=...)).
PAGE_JS = r"""
() => {
  const WORDS = __WORDS__;
  const lang = () => (document.documentElement.lang === "en" ? "en" : "ja");
  document.documentElement.lang = "ja";

  // the page's hidden action box: "vote up <key>", "pick <entry id> <key>"
  const act = (value) => {
    const box = document.querySelector("#fb-action textarea, #fb-action input");
    const go = document.querySelector("#fb-action-go");
    if (!box || !go) return;
    box.value = value;
    box.dispatchEvent(new Event("input", { bubbles: true }));
    setTimeout(() => go.click(), 0);
  };
  const copy = async (button) => {
    const text = button.value || "";
    try {
      await navigator.clipboard.writeText(text);
    } catch (err) {  // http on an intranet host: no clipboard API, the old way still works
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    const label = button.textContent;
    button.textContent = WORDS[lang()].copied;
    setTimeout(() => { button.textContent = label; }, 2000);
  };
  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element
      ? event.target.closest("button.fb-ask, button.fb-pick, button.fb-vote, button.fb-copy") : null;
    if (!button) return;
    event.preventDefault();
    if (button.classList.contains("fb-copy")) { copy(button); return; }
    if (button.classList.contains("fb-vote")) { act("vote " + button.value); return; }
    const answer = button.closest(".fb-answer");
    if (button.classList.contains("fb-pick")) {
      act("pick " + button.value + " " + (answer ? answer.getAttribute("lang") : "ja"));
      return;
    }
    const box = document.querySelector("#question textarea");
    const send = document.querySelector("#send");
    if (!box || !send) return;
    box.value = button.value || "";
    box.dispatchEvent(new Event("input", { bubbles: true }));
    setTimeout(() => send.click(), 0);
  });

  // Gradio names each message "<role>'s message: <its HTML>", and a few controls in English: names in the
  // page's language instead, a message's from its text
  const named = (el, name) => { if (el.getAttribute("aria-label") !== name) el.setAttribute("aria-label", name); };
  const tidy = () => {
    const words = WORDS[lang()];
    document.querySelectorAll("#chat [aria-label]").forEach((el) => {
      const label = el.getAttribute("aria-label");
      if (label.includes("'s message: ") || el.dataset.fbNamed) {
        el.dataset.fbNamed = "1";  // named again whenever its text changes
        const who = el.querySelector(".fb-question") ? "you" : "bot";
        const text = el.textContent.replace(/\s+/g, " ").trim();
        named(el, words[who] + ": " + (text.length > 80 ? text.slice(0, 79) + "…" : text));
      } else if (["chatbot conversation", WORDS.en.conversation, WORDS.ja.conversation].includes(label)) {
        named(el, words.conversation);
      } else if (el.classList.contains("example")) {
        named(el, words.example + ": " + el.textContent.trim());
      } else if (["Scroll down", WORDS.en.scroll, WORDS.ja.scroll].includes(label)) {
        named(el, words.scroll);
      }
    });
    document.querySelectorAll("#chat button.fb-vote").forEach((el) => {  // the sanitizer drops aria-pressed
      const pressed = el.classList.contains("fb-pressed") ? "true" : "false";
      if (el.getAttribute("aria-pressed") !== pressed) el.setAttribute("aria-pressed", pressed);
    });
    let newest = null;
    document.querySelectorAll("#chat .fb-answer").forEach((el) => {
      if (!seen.has(el)) { seen.add(el); newest = el; }
    });
    if (newest) {  // show the start of the new reply, not the end of a long one
      let box = newest.parentElement;
      const scrolls = (el) => el.scrollHeight > el.clientHeight + 4
        && /(auto|scroll)/.test(getComputedStyle(el).overflowY);
      while (box && !scrolls(box)) {
        box = box.parentElement;
      }
      const bubble = newest.closest(".message-row") || newest;
      if (box && box !== document.body && box !== document.documentElement) {
        box.scrollTop += bubble.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
      }
    }
  };
  const seen = new WeakSet();
  new MutationObserver(tidy).observe(document.body, { childList: true, subtree: true, attributes: true,
                                                      attributeFilter: ["aria-label"] });
}
""".replace("__WORDS__", json.dumps(_WORDS, ensure_ascii=False))

#: Before the ja/en switch's handler: the document's language follows the page's (screen readers, fonts).
SET_LANG_JS = "(lang, ...rest) => { document.documentElement.lang = lang; return [lang, ...rest]; }"
