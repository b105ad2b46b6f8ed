// Package diffusion is Pigment's Stable Diffusion engine in pure Go.
//
// Data flow and shapes (SD 1.5 numbers; B = batch, ×2 with classifier-free
// guidance):
//
//	prompt ──clip.Tokenizer──▶ input_ids [B, 77]
//	       ──clip.TextModel──▶ encoder_hidden_states [B, 77, 768]
//	latents [B, 4, H/8, W/8] ──unet.UNet2DConditionModel (per timestep)──▶ noise_pred [B, 4, H/8, W/8]
//	latents / scaling_factor ──vae.AutoencoderKL.Decode──▶ image [B, 3, H, W] in [-1, 1]
//
// Subpackages hold one model component each (clip, unet, vae), mirroring the
// diffusers checkpoint layout, on top of tensor (the float32 NCHW tensor and
// its ops), nn (weight loading and basic layers) and safetensors. This
// package ties them together: LoadModel reads a diffusers model directory.
package diffusion
