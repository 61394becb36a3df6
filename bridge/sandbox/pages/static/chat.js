// The customer's Telegram, in a page.  Everything goes through the Telegram simulator's
// control API: /_sim/users, /_sim/inject/{kind}, and the history long-poll
// GET /_sim/chats/{id}/history?version=V&timeout=S, which answers as soon as anything
// changes, so bot messages, edits and keyboards show up without polling delays.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const NAMES = { 1001: "Alice", 1002: "Bob", 1003: "Carol", 1004: "Dmitri", 1005: "李雷" };
  const params = new URLSearchParams(location.search);
  const user = {
    id: parseInt(params.get("user") || "1001", 10),
    first_name: params.get("name") || "",
    language_code: params.get("lang") || "",
  };
  let generation = 0; // bumped on a user switch: older poll loops stop
  let lastRendered = "";
  const pendingQueries = new Set(); // our button presses awaiting answerCallbackQuery
  let answersSeen = 0;

  // --- talking to the simulator -----------------------------------------------------------

  async function api(path, body) {
    const init = body === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    };
    const response = await fetch(path, init);
    const answer = await response.json();
    if (!answer.ok) throw new Error(answer.error || response.statusText);
    return answer.result;
  }

  async function inject(kind, fields) {
    try {
      return await api(`/_sim/inject/${kind}`, { user: user.id, ...fields });
    } catch (err) {
      toast(`Could not send: ${err.message}`);
      throw err;
    }
  }

  function sendText(text) {
    text = text.trim();
    if (!text) return Promise.resolve();
    if (text.startsWith("/")) {
      const [command, ...rest] = text.split(/\s+/);
      return inject("command", { command, payload: rest.join(" ") || null });
    }
    return inject("text", { text });
  }

  async function pressButton(messageId, button) {
    if (button.url) {
      window.open(button.url, "_blank", "noopener");
      return;
    }
    if (button.callback_data === undefined) return;
    const result = await inject("callback", { message_id: messageId, data: button.callback_data });
    pendingQueries.add(result.update.callback_query.id);
  }

  function pressReplyButton(button) {
    if (typeof button === "string") return sendText(button);
    if (button.request_contact) {
      const phone = prompt("Share your phone number", "+86 138 0013 8000");
      if (phone) inject("contact", { phone_number: phone });
      return;
    }
    if (button.request_location) {
      inject("location", { latitude: 31.2304, longitude: 121.4737 });
      return;
    }
    sendText(button.text);
  }

  // --- files ----------------------------------------------------------------------------

  function base64(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }

  async function sendFiles(files, caption) {
    const asFile = $("as-file").checked;
    const items = [];
    for (const file of files) {
      const photo = !asFile && /^image\/(jpeg|png|gif|webp)$/.test(file.type);
      items.push({
        type: photo ? "photo" : "document",
        data_base64: await base64(file),
        file_name: file.name,
        mime_type: file.type || "application/octet-stream",
      });
    }
    if (caption) items[0].caption = caption;
    if (items.length >= 2 && items.length <= 10) {
      // Telegram albums cannot mix photos and documents.
      if (items.some((i) => i.type === "document")) items.forEach((i) => (i.type = "document"));
      return inject("album", { items });
    }
    for (const item of items) {
      const { type, ...fields } = item;
      if (type === "photo") {
        await inject("photo", { data_base64: fields.data_base64, caption: fields.caption });
      } else {
        await inject("document", fields);
      }
    }
  }

  // --- rendering --------------------------------------------------------------------------

  const onCommand = (command) => sendText(command);

  function time(unix) {
    const d = new Date(unix * 1000);
    return d.toTimeString().slice(0, 5);
  }

  function largest(m) {
    return m.files && m.files.length ? m.files[m.files.length - 1] : null;
  }

  function mediaNode(m) {
    const file = largest(m);
    const raw = m.message || {};
    if (raw.contact) {
      const c = raw.contact;
      return textNode("div", `👤 ${[c.first_name, c.last_name].filter(Boolean).join(" ")}\n${c.phone_number}`, "contact");
    }
    if (raw.location) {
      return textNode("div", `📍 ${raw.location.latitude}, ${raw.location.longitude}`, "location");
    }
    if (!file) return null;
    const kind = m.media_kind || file.kind;
    if (kind === "photo" || kind === "sticker" || (kind === "document" && /^image\//.test(file.mime_type || ""))) {
      const a = document.createElement("a");
      a.href = file.url;
      a.target = "_blank";
      const img = document.createElement("img");
      img.src = file.url;
      img.alt = kind;
      img.className = kind === "sticker" ? "sticker" : "photo";
      a.appendChild(img);
      return a;
    }
    if (kind === "video" || kind === "animation" || kind === "video_note") {
      const v = document.createElement("video");
      v.src = file.url;
      v.controls = true;
      v.className = "photo";
      return v;
    }
    if (kind === "voice" || kind === "audio") {
      const au = document.createElement("audio");
      au.src = file.url;
      au.controls = true;
      return au;
    }
    const a = document.createElement("a");
    a.className = "document";
    a.href = file.url;
    a.target = "_blank";
    a.textContent = `📄 ${file.file_name || "file"} · ${Math.max(1, Math.round(file.file_size / 1024))} KB`;
    return a;
  }

  function textNode(tag, text, cls) {
    const el = document.createElement(tag);
    el.textContent = text;
    if (cls) el.className = cls;
    return el;
  }

  function inlineKeyboard(m) {
    const rows = (m.reply_markup && m.reply_markup.inline_keyboard) || [];
    if (!rows.length) return null;
    const box = document.createElement("div");
    box.className = "inline-keyboard";
    for (const row of rows) {
      const line = document.createElement("div");
      line.className = "row";
      for (const button of row) {
        const b = textNode("button", button.text + (button.url ? " ↗" : ""));
        b.type = "button";
        b.addEventListener("click", () => pressButton(m.message_id, button));
        line.appendChild(b);
      }
      box.appendChild(line);
    }
    return box;
  }

  function bubble(group) {
    const first = group[0];
    const wrap = document.createElement("div");
    wrap.className = `msg ${first.outgoing ? "in" : "out"}`; // "out" = the user's own
    wrap.dataset.messageId = first.message_id;
    const box = document.createElement("div");
    box.className = "bubble";
    const media = group.map(mediaNode).filter(Boolean);
    if (media.length) {
      const holder = document.createElement("div");
      holder.className = media.length > 1 ? "album" : "media";
      media.forEach((node) => holder.appendChild(node));
      box.appendChild(holder);
    }
    for (const m of group) {
      const text = m.text !== null && m.text !== undefined ? m.text : m.caption;
      if (!text) continue;
      const entities = m.text !== null && m.text !== undefined ? m.entities : m.caption_entities;
      const p = document.createElement("div");
      p.className = "text";
      p.appendChild(renderEntities(text, entities, onCommand));
      box.appendChild(p);
    }
    const meta = document.createElement("span");
    meta.className = "meta";
    const edited = group.some((m) => m.edits && m.edits.length);
    meta.textContent = (edited ? "edited " : "") + time(first.date);
    box.appendChild(meta);
    wrap.appendChild(box);
    for (const m of group) {
      const kb = inlineKeyboard(m);
      if (kb) wrap.appendChild(kb);
    }
    return wrap;
  }

  function groups(messages) {
    const result = [];
    for (const m of messages) {
      if (m.deleted) continue;
      const last = result[result.length - 1];
      if (last && m.media_group_id && last[0].media_group_id === m.media_group_id && last[0].outgoing === m.outgoing) {
        last.push(m);
      } else {
        result.push([m]);
      }
    }
    return result;
  }

  function renderKeyboard(keyboard) {
    const box = $("keyboard");
    box.replaceChildren();
    const rows = (keyboard && keyboard.keyboard) || [];
    box.hidden = rows.length === 0;
    for (const row of rows) {
      const line = document.createElement("div");
      line.className = "row";
      for (const button of row) {
        const label = typeof button === "string" ? button : button.text;
        const b = textNode("button", (button.request_contact ? "📱 " : "") + label);
        b.type = "button";
        if (button.request_contact) b.className = "share-contact";
        b.addEventListener("click", () => pressReplyButton(button));
        line.appendChild(b);
      }
      box.appendChild(line);
    }
    $("text").placeholder = (keyboard && keyboard.input_field_placeholder) || "Message";
  }

  function render(state) {
    const key = JSON.stringify([state.messages, state.keyboard]);
    if (key === lastRendered) return;
    lastRendered = key;
    const list = $("messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    list.replaceChildren(...groups(state.messages).map(bubble));
    if (!state.messages.length) {
      list.appendChild(textNode("div", "No messages here yet. Send /start to begin.", "empty"));
    }
    renderKeyboard(state.keyboard);
    if (atBottom || !list.dataset.scrolled) {
      list.scrollTop = list.scrollHeight;
      list.dataset.scrolled = "1";
      // Pictures arrive after the layout: stay at the bottom as each one grows the list.
      list.querySelectorAll("img, video").forEach((media) =>
        media.addEventListener("load", () => (list.scrollTop = list.scrollHeight), { once: true }));
    }
  }

  // --- live updates -------------------------------------------------------------------------

  function toast(text) {
    const el = $("toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (el.hidden = true), 3500);
  }

  async function showCallbackAnswers() {
    const answers = await api("/_sim/callback_answers");
    for (const answer of answers.slice(answersSeen)) {
      if (pendingQueries.delete(String(answer.callback_query_id)) && answer.text) toast(answer.text);
    }
    answersSeen = answers.length;
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function follow(gen) {
    let version = null;
    while (gen === generation) {
      try {
        const query = version === null ? "" : `?version=${version}&timeout=25`;
        const state = await api(`/_sim/chats/${user.id}/history${query}`);
        if (gen !== generation) return;
        version = state.version;
        $("status").textContent = `bot · @${document.body.dataset.botUsername || "bot"}`;
        render(state);
        if (pendingQueries.size) await showCallbackAnswers();
      } catch (err) {
        $("status").textContent = "connecting…";
        await sleep(1000);
      }
    }
  }

  async function switchUser(id, name, lang) {
    const known = (await api("/_sim/")).users.find((u) => u.id === id);
    user.id = id;
    user.first_name = name || (known && known.first_name) || NAMES[id] || `User ${id}`;
    user.language_code = lang || (known && known.language_code) || "en";
    await api("/_sim/users", { id: user.id, first_name: user.first_name, language_code: user.language_code });
    $("user-id").value = user.id;
    $("user-name").value = user.first_name;
    $("user-lang").value = user.language_code;
    const url = new URL(location.href);
    url.searchParams.set("user", user.id);
    history.replaceState(null, "", url);
    document.title = `${user.first_name} · ${$("bot-name").textContent}`;
    lastRendered = "";
    generation += 1;
    follow(generation);
  }

  // --- wiring -------------------------------------------------------------------------------

  $("avatar").textContent = ($("bot-name").textContent || "B").trim().charAt(0);
  document.body.dataset.botUsername = $("status").textContent.replace(/^bot · @/, "");

  $("composer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("text");
    const files = Array.from($("file").files || []);
    const text = input.value;
    input.value = "";
    if (files.length) {
      $("file").value = "";
      await sendFiles(files, text.trim());
    } else {
      await sendText(text);
    }
  });
  $("file").addEventListener("change", () => {
    // Like Telegram: picking files sends them at once, the typed text as the caption.
    if ($("file").files.length) $("composer").requestSubmit();
  });
  $("commands").addEventListener("click", (ev) => {
    const command = ev.target.dataset && ev.target.dataset.command;
    if (command) sendText(command);
  });
  // A different user id starts from that user's own name, not the previous one's.
  $("user-id").addEventListener("input", () => ($("user-name").value = ""));
  $("user-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    switchUser(parseInt($("user-id").value, 10), $("user-name").value.trim(), $("user-lang").value);
  });

  switchUser(user.id, user.first_name, user.language_code).catch((err) => toast(err.message));
})();
