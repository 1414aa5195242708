/* 办事助手 — the kiosk's document camera (高拍仪), shared by the pre-application form
 * (prefill.js) and handing in missing materials (supplement.js).
 *
 * window.banshiCamera:
 *   available()            whether a camera can be tried (getUserMedia exists and has not failed)
 *   disable()              no camera after all (the pages fall back to a file picker)
 *   open()                 → Promise<MediaStream>: the first camera answers, then a camera whose
 *                            name says it is a document camera is preferred
 *   stop(stream)           stop a stream's tracks
 *   snap(video)            → Promise<Blob>: the video's frame as JPEG, at most MAX_SIDE a side
 *   fromFile(file, bytes)  → Promise<Blob>: JPEG and PNG within the bound as they are, other
 *                            pictures re-encoded as JPEG; rejected when it is not a picture
 */
(function () {
  "use strict";

  var MAX_SIDE = 2400;        // captured or re-encoded photos: at most this many pixels a side
  var JPEG_QUALITY = 0.85;
  var SENT_TYPES = /^image\/(jpeg|png)$/;
  var DOCUMENT_CAMERA = /document|doc[\s_-]?cam|visuali[sz]er|scanner|高拍|文档|文件/i;
  var CAMERA = { video: { width: { ideal: 2592 }, height: { ideal: 1944 } }, audio: false };

  var canFilm = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);

  function stop(stream) {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
  }

  // The first camera answered; a camera named like a document camera is preferred.
  function documentCamera(stream) {
    if (!navigator.mediaDevices.enumerateDevices) return stream;
    var current = stream.getVideoTracks()[0];
    var currentId = current && current.getSettings ? current.getSettings().deviceId : null;
    return navigator.mediaDevices.enumerateDevices().then(function (devices) {
      var wanted = devices.filter(function (d) {
        return d.kind === "videoinput" && DOCUMENT_CAMERA.test(d.label || "") && d.deviceId !== currentId;
      })[0];
      if (!wanted) return stream;
      stop(stream);
      return navigator.mediaDevices.getUserMedia({
        video: { deviceId: { exact: wanted.deviceId }, width: CAMERA.video.width, height: CAMERA.video.height }
      });
    }, function () { return stream; });
  }

  function open() {
    if (!canFilm) return Promise.reject(new Error("no camera"));
    return navigator.mediaDevices.getUserMedia(CAMERA).then(documentCamera);
  }

  function scaled(width, height) {
    var ratio = Math.min(1, MAX_SIDE / Math.max(width, height));
    return { width: Math.max(1, Math.round(width * ratio)), height: Math.max(1, Math.round(height * ratio)) };
  }

  function toJpeg(source, width, height) {
    var size = scaled(width, height);
    var canvas = document.createElement("canvas");
    canvas.width = size.width;
    canvas.height = size.height;
    canvas.getContext("2d").drawImage(source, 0, 0, size.width, size.height);
    return new Promise(function (resolve, reject) {
      canvas.toBlob(function (blob) { blob ? resolve(blob) : reject(new Error("encode")); }, "image/jpeg", JPEG_QUALITY);
    });
  }

  function snap(video) {
    if (!video || !video.videoWidth) return Promise.reject(new Error("no frame"));
    return toJpeg(video, video.videoWidth, video.videoHeight);
  }

  function fromFile(file, maxBytes) {
    if (!file) return Promise.reject(new Error("no file"));
    if (SENT_TYPES.test(file.type) && (!maxBytes || file.size <= maxBytes)) return Promise.resolve(file);
    if (typeof window.createImageBitmap !== "function") return Promise.reject(new Error("not a picture"));
    return window.createImageBitmap(file).then(function (bitmap) {
      return toJpeg(bitmap, bitmap.width, bitmap.height);
    });
  }

  window.banshiCamera = {
    available: function () { return canFilm; },
    disable: function () { canFilm = false; },
    open: open,
    stop: stop,
    snap: snap,
    fromFile: fromFile
  };
})();
