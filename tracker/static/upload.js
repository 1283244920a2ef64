// Our own file pickers (.file-picker: the chosen file's name in Vietnamese, drag and drop), and the
// return's upload with a progress bar; without JavaScript the forms post normally.
(function () {
  Array.prototype.forEach.call(document.querySelectorAll(".file-picker"), function (zone) {
    var input = zone.querySelector("input[type=file]");
    var chosen = zone.querySelector(".file-name");
    if (!input) return;
    function showName() { if (chosen && input.files.length) chosen.textContent = "Đã chọn: " + input.files[0].name; }
    input.addEventListener("change", showName);
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) {
      if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; showName(); }
    });
  });

  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var input = document.getElementById("file");
  var bar = document.getElementById("upload-progress");
  var status = document.getElementById("upload-status");
  form.addEventListener("submit", function (e) {
    if (!input.files.length) return;
    e.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (ev) {
      if (ev.lengthComputable) { bar.hidden = false; bar.value = Math.round(ev.loaded * 100 / ev.total); status.textContent = "Đang tải lên: " + bar.value + "%"; }
    });
    xhr.addEventListener("load", function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
      if (xhr.status < 300 && body.redirect) { status.textContent = "Đã nhận tệp, đang chuyển tới kết quả…"; window.location = body.redirect; return; }
      bar.hidden = true;
      status.textContent = (body.error && body.error.message) || "Không tải lên được tệp (mã lỗi " + xhr.status + "). Vui lòng thử lại.";
      status.className = "flash flash-error";
    });
    xhr.addEventListener("error", function () { status.textContent = "Mất kết nối khi tải lên. Vui lòng thử lại."; status.className = "flash flash-error"; });
    status.className = ""; status.textContent = "Đang tải lên…";
    xhr.send(new FormData(form));
  });
})();
