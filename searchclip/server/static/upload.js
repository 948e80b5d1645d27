// Images to search by: the file button, a file dropped anywhere on the page, an image
// pasted from the clipboard, or a result's thumbnail dragged back onto the page.

const OWN_IMAGE = /\/api\/images\/(\d+)\/(?:file|thumbnail)(?:$|[?#])/;

function carriesFiles(event) {
  return [...(event.dataTransfer?.types ?? [])].includes("Files");
}

function imageFile(files) {
  // a file of unknown type is let through: the server decides whether it is an image
  return [...(files ?? [])].find((file) => !file.type || file.type.startsWith("image/"));
}

/**
 * @param {{overlay: HTMLElement, input: HTMLInputElement, file: Function, like: Function,
 *   refused: Function}} parts file(File) for an image to upload, like(id) for one of the
 *   index's own images dropped back, refused(message) for anything else dropped
 */
export function watchImages({ overlay, input, file, like, refused }) {
  input.addEventListener("change", () => {
    const chosen = imageFile(input.files);
    input.value = ""; // so that choosing the same file again searches again
    if (chosen) file(chosen);
  });

  // dragenter/dragleave fire for every child crossed: count them to know when it left
  let depth = 0;
  const hide = () => {
    depth = 0;
    overlay.hidden = true;
  };
  window.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    depth += 1;
    overlay.hidden = false;
  });
  window.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    depth -= 1;
    if (depth <= 0) hide();
  });
  window.addEventListener("dragover", (event) => {
    const types = [...(event.dataTransfer?.types ?? [])];
    if (!types.includes("Files") && !types.includes("text/uri-list")) return;
    event.preventDefault(); // without it the browser opens the file instead of dropping
    event.dataTransfer.dropEffect = "copy";
  });
  window.addEventListener("drop", (event) => {
    hide();
    const data = event.dataTransfer;
    if (!data) return;
    event.preventDefault();
    const dropped = imageFile(data.files);
    if (dropped) return file(dropped);
    const own = OWN_IMAGE.exec(data.getData("text/uri-list").split("\n")[0] ?? "");
    if (own) return like(Number(own[1]));
    if (data.files.length) refused("That is not an image file.");
  });

  document.addEventListener("paste", (event) => {
    const pasted = imageFile(event.clipboardData?.files);
    if (!pasted) return; // text pastes go where they were meant to
    event.preventDefault();
    file(pasted);
  });
}
