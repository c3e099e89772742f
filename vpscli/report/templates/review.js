(function () {
  "use strict";
  var player = document.getElementById("player");
  var svg = document.getElementById("timeline");
  var playhead = document.getElementById("playhead");
  var duration = parseFloat(svg.getAttribute("data-duration")) || 0;
  var width = svg.viewBox.baseVal.width;

  function seek(seconds) {
    // jump the player to a moment (a hair after it, so the frame shown is the one that starts there)
    if (player) {
      player.currentTime = Math.max(0, seconds + 0.001);
      player.pause();
    }
    drawPlayhead(seconds);
    markEpisode(seconds);
  }

  function drawPlayhead(seconds) {
    var x = duration > 0 ? (seconds / duration) * width : 0;
    playhead.setAttribute("x1", x);
    playhead.setAttribute("x2", x);
  }

  function markEpisode(seconds) {
    var rows = document.querySelectorAll(".episode-row");
    for (var i = 0; i < rows.length; i++) {
      var start = parseFloat(rows[i].getAttribute("data-start"));
      var next = i + 1 < rows.length ? parseFloat(rows[i + 1].getAttribute("data-start")) : Infinity;
      rows[i].classList.toggle("current", seconds >= start && seconds < next);
    }
  }

  document.getElementById("timeline-box").addEventListener("click", function (event) {
    var box = svg.getBoundingClientRect();
    var episode = event.target.getAttribute && event.target.getAttribute("data-episode");
    if (episode) {
      var row = document.querySelector('.episode-row[data-episode="' + episode + '"]');
      if (row) { seek(parseFloat(row.getAttribute("data-start"))); return; }
    }
    seek(Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)) * duration);
  });

  var rows = document.querySelectorAll(".episode-row");
  for (var i = 0; i < rows.length; i++) {
    rows[i].addEventListener("click", function (event) {
      event.preventDefault();
      seek(parseFloat(this.getAttribute("data-start")));
      if (player) { player.scrollIntoView({block: "nearest"}); }
    });
    rows[i].addEventListener("keydown", function (event) {
      if (event.key === "Enter") { seek(parseFloat(this.getAttribute("data-start"))); }
    });
  }

  if (player) {
    player.addEventListener("timeupdate", function () { drawPlayhead(player.currentTime); });
  }
})();
