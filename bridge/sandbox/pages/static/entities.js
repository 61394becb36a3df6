// Telegram message entities → DOM nodes, built with createElement/textContent only (never
// innerHTML), so a customer's or an agent's text can never become markup.
// Entity offsets and lengths count UTF-16 code units, which is how JavaScript strings
// index too, so slices line up without any conversion.
"use strict";

const SAFE_SCHEMES = /^(https?:|mailto:|tel:|tg:)/i;

function safeHref(url) {
  return SAFE_SCHEMES.test(url || "") ? url : null;
}

function link(href) {
  const a = document.createElement("a");
  const safe = safeHref(href);
  if (safe) {
    a.href = safe;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
  }
  return a;
}

function elementFor(entity, slice, onCommand) {
  const make = (tag, cls) => {
    const el = document.createElement(tag);
    if (cls) el.className = cls;
    return el;
  };
  switch (entity.type) {
    case "bold": return make("b");
    case "italic": return make("i");
    case "underline": return make("u");
    case "strikethrough": return make("s");
    case "code": return make("code");
    case "pre": {
      const pre = make("pre");
      if (entity.language) pre.dataset.language = entity.language;
      return pre;
    }
    case "spoiler": {
      const el = make("span", "spoiler");
      el.title = "spoiler: click to reveal";
      el.addEventListener("click", () => el.classList.add("revealed"));
      return el;
    }
    case "blockquote": return make("blockquote");
    case "expandable_blockquote": return make("blockquote", "expandable");
    case "text_link": return link(entity.url);
    case "url": return link(/^[a-z][a-z0-9+.-]*:/i.test(slice) ? slice : "http://" + slice);
    case "email": return link("mailto:" + slice);
    case "phone_number": return link("tel:" + slice.replace(/[^+\d]/g, ""));
    case "mention": return link("https://t.me/" + slice.replace(/^@/, ""));
    case "text_mention": return make("span", "mention");
    case "bot_command": {
      // As in Telegram: tapping a command in a bot message sends it.
      const a = make("a", "command");
      a.href = "#";
      a.addEventListener("click", (ev) => {
        ev.preventDefault();
        if (onCommand) onCommand(slice.split("@")[0]);
      });
      return a;
    }
    default: return make("span", "entity-" + entity.type);
  }
}

function appendRange(parent, text, start, end, entities, onCommand) {
  let pos = start;
  let i = 0;
  while (i < entities.length) {
    const entity = entities[i];
    const stop = Math.min(entity.offset + entity.length, end);
    if (entity.offset > pos) parent.appendChild(document.createTextNode(text.slice(pos, entity.offset)));
    // Telegram guarantees entities nest (one contains the other or they are disjoint):
    // the ones starting before this one ends are inside it.
    let j = i + 1;
    while (j < entities.length && entities[j].offset < stop) j++;
    const el = elementFor(entity, text.slice(entity.offset, stop), onCommand);
    appendRange(el, text, Math.max(entity.offset, pos), stop, entities.slice(i + 1, j), onCommand);
    parent.appendChild(el);
    pos = Math.max(pos, stop);
    i = j;
  }
  if (pos < end) parent.appendChild(document.createTextNode(text.slice(pos, end)));
}

// renderEntities("hi *there*", [{type: "bold", offset: 3, length: 7}]) → a fragment.
function renderEntities(text, entities, onCommand) {
  const fragment = document.createDocumentFragment();
  const sorted = (entities || [])
    .filter((e) => e.length > 0)
    .slice()
    .sort((a, b) => a.offset - b.offset || b.length - a.length);
  appendRange(fragment, text || "", 0, (text || "").length, sorted, onCommand);
  return fragment;
}
