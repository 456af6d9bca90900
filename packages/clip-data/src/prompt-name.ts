/** Class names for prompts: `aquarium_fish` → `aquarium fish`. */
export function promptName(raw: string): string {
  return raw.replace(/_/g, ' ').trim();
}
